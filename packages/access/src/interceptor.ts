import * as grpc from '@grpc/grpc-js';
import { sealpostMetrics } from '@sealpost/telemetry';
import { toGrpcStatus } from './app-error';
import {
  assertStepUp,
  assertTenantAccess,
  authorize,
  DEFAULT_PURPOSE_POLICY,
  parsePurpose,
  type Purpose,
  type PurposePolicy,
} from './checks';
import { AccessError } from './errors';
import type { OperatorTokenVerifier } from './operator-token';
import type { AccessPolicy, MethodRule } from './permission-table';
import { serviceIdentityFromPeer } from './peer-identity';
import { principalId, type OperatorPrincipal, type Principal, type ServicePrincipal } from './principal';

export const PURPOSE_METADATA_KEY = 'x-sealpost-purpose';
export const TICKET_METADATA_KEY = 'x-sealpost-ticket';

/** One authorisation decision, ids and codes only — safe to log, count and publish. */
export interface AccessDecisionEvent {
  readonly method: string;
  readonly decision: 'allow' | 'deny';
  /** `OK` for allows, otherwise the refusal reason (also sent in `x-sealpost-reason`). */
  readonly reason: string;
  readonly principalKind?: Principal['kind'];
  /** Operator id or service SPIFFE id; absent when authentication failed. */
  readonly principalId?: string;
  readonly tenant?: string;
  readonly purpose?: string;
}

/** Supplies the current session version of an operator (bumped by lock or role change). */
export interface SessionVersionSource {
  current(principal: OperatorPrincipal): Promise<number | undefined>;
}

export interface AccessInterceptorOptions {
  readonly policy: AccessPolicy;
  /** Trust domain every mTLS peer must belong to. */
  readonly trustDomain: string;
  /** Kubernetes namespace whose `spiffe://<td>/ns/<ns>/sa/<service>` ids are accepted (SEALPOST_SPIFFE_NAMESPACE). */
  readonly spiffeNamespace?: string;
  /** Verifies operator bearer tokens; without one, every bearer token is refused. */
  readonly verifier?: OperatorTokenVerifier;
  readonly purposes?: PurposePolicy;
  readonly stepUpWindowSeconds?: number;
  /** Checked for sensitive methods; production wiring must supply it (identity owns the versions). */
  readonly sessionVersions?: SessionVersionSource;
  /**
   * Accept operator calls whose connection has no verified client certificate. Only for a listener that is TLS
   * with optional client certificates (createGrpcServer never binds plaintext); default false.
   */
  readonly operatorsWithoutClientCert?: boolean;
  /** Tenant named by a request message, checked against an operator's tenant; default reads `tenantId`. */
  readonly tenantOf?: (request: unknown) => string | undefined;
  /** Receives every decision; must not throw (exceptions are swallowed so a sink bug cannot open access). */
  readonly onDecision?: (event: AccessDecisionEvent) => void;
}

/** What the interceptor learned about a call, for handlers. */
export interface CallAccess {
  readonly principal: Principal;
  readonly rule: MethodRule;
  readonly purpose?: Purpose;
}

// Keyed by the request Metadata object, which grpc-js hands unchanged from the interceptor to the handler;
// a client cannot forge an entry, unlike a metadata header.
const accessByMetadata = new WeakMap<grpc.Metadata, CallAccess>();

/** The access facts of an authorised call; throws (a bug) if the access interceptor did not run for it. */
export function callAccessOf(call: { metadata: grpc.Metadata }): CallAccess {
  const access = accessByMetadata.get(call.metadata);
  if (!access) throw new Error('no access decision for this call: is the access interceptor installed?');
  return access;
}

/** The authenticated principal of a call (see `callAccessOf`). */
export function principalOf(call: { metadata: grpc.Metadata }): Principal {
  return callAccessOf(call).principal;
}

/** Default `tenantOf`: the `tenantId` (ts-proto) or `tenant_id` field of a request message, if it is a string. */
export function defaultTenantOf(request: unknown): string | undefined {
  if (typeof request !== 'object' || request === null) return undefined;
  const r = request as Record<string, unknown>;
  const value = r['tenantId'] ?? r['tenant_id'];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function single(metadata: grpc.Metadata, key: string, field: 'purpose' | 'ticket'): string | undefined {
  const values = metadata.get(key);
  if (values.length > 1) {
    const reason = field === 'purpose' ? 'PURPOSE_INVALID' : 'TICKET_INVALID';
    throw new AccessError('INVALID_ARGUMENT', reason, `field \`${field}\` must be given at most once`);
  }
  const [value] = values;
  return typeof value === 'string' ? value : undefined;
}

function bearerToken(metadata: grpc.Metadata): string | undefined {
  const values = metadata.get('authorization');
  if (values.length === 0) return undefined;
  const [value] = values;
  if (values.length > 1 || typeof value !== 'string') {
    throw new AccessError('UNAUTHENTICATED', 'TOKEN_INVALID', 'exactly one bearer token is accepted');
  }
  const m = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)$/.exec(value);
  if (!m?.[1])
    throw new AccessError('UNAUTHENTICATED', 'TOKEN_INVALID', 'the authorization header must be a bearer token');
  return m[1];
}

/**
 * A grpc-js server interceptor that authenticates (mTLS peer → service; `authorization: Bearer` → operator),
 * authorises from the table (default deny), enforces step-up, session version, purpose and the request's tenant,
 * exposes the result through `principalOf`/`callAccessOf`, and reports each decision through `onDecision`.
 */
export function createAccessInterceptor(options: AccessInterceptorOptions): grpc.ServerInterceptor {
  const purposes = options.purposes ?? DEFAULT_PURPOSE_POLICY;
  const tenantOf = options.tenantOf ?? defaultTenantOf;
  // Every refusal, by method path and reason code (never the principal: ids of operators stay in audit).
  const denied = sealpostMetrics('access').counter('sealpost_auth_denied_total');
  const emit = (event: AccessDecisionEvent): void => {
    try {
      options.onDecision?.(event);
    } catch {
      // A failing sink must neither open nor break access; the sink owns its own error reporting.
    }
  };

  async function decide(
    method: string,
    call: grpc.ServerInterceptingCallInterface,
    metadata: grpc.Metadata,
    authenticated: (principal: Principal) => void,
  ) {
    const token = bearerToken(metadata);
    const ctx = call.getAuthContext();
    const hasPeerCert = ctx?.transportSecurityType === 'ssl' && ctx.sslPeerCertificate !== undefined;
    let channelPeer: ServicePrincipal | undefined;
    if (hasPeerCert || token === undefined || !options.operatorsWithoutClientCert) {
      // The context read above, not a second read: each one converts the peer certificate anew.
      channelPeer = serviceIdentityFromPeer(
        { getAuthContext: () => ctx },
        options.trustDomain,
        options.spiffeNamespace,
      );
    }
    let principal: Principal;
    if (token !== undefined) {
      if (!options.verifier)
        throw new AccessError('UNAUTHENTICATED', 'TOKEN_INVALID', 'operator tokens are not accepted here');
      const operator = await options.verifier.verify(token);
      principal = channelPeer ? { ...operator, via: channelPeer } : operator;
    } else if (channelPeer) {
      principal = channelPeer;
    } else {
      throw new AccessError('UNAUTHENTICATED', 'PEER_CERT_MISSING', 'a verified client certificate is required');
    }
    authenticated(principal);
    return { principal, ...(await check(method, principal, metadata)) };
  }

  async function check(method: string, principal: Principal, metadata: grpc.Metadata) {
    const rule = authorize(options.policy, method, principal);
    if (rule.sensitive && principal.kind === 'operator') {
      assertStepUp(principal, { windowSeconds: options.stepUpWindowSeconds });
      if (options.sessionVersions) {
        const current = await options.sessionVersions.current(principal);
        if (current === undefined || principal.sessionVersion < current) {
          throw new AccessError('PERMISSION_DENIED', 'SESSION_REVOKED', 'the session was revoked; sign in again');
        }
      }
    }
    let purpose: Purpose | undefined;
    if (rule.purposeRequired) {
      purpose = parsePurpose(
        purposes,
        single(metadata, PURPOSE_METADATA_KEY, 'purpose'),
        single(metadata, TICKET_METADATA_KEY, 'ticket'),
      );
    }
    return { rule, purpose };
  }

  return (methodDescriptor, call) => {
    const method = methodDescriptor.path;
    let access: CallAccess | undefined;
    let refused = false;
    let allowEmitted = false;

    const describe = (principal?: Principal) =>
      principal
        ? {
            principalKind: principal.kind,
            principalId: principalId(principal),
            ...(principal.kind === 'operator' ? { tenant: principal.tenant } : {}),
          }
        : {};
    const refuse = (err: unknown, principal?: Principal): void => {
      refused = true;
      const status = toGrpcStatus(err);
      const reason = err instanceof AccessError ? err.reason : 'INTERNAL';
      denied.add(1, { method, reason });
      emit({ method, decision: 'deny', reason, ...describe(principal) });
      intercepting.sendStatus(status);
    };
    const allowOnce = (): void => {
      if (allowEmitted || !access) return;
      allowEmitted = true;
      emit({ method, decision: 'allow', reason: 'OK', ...describe(access.principal), purpose: access.purpose?.code });
    };

    const intercepting: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            let known: Principal | undefined;
            decide(method, call, metadata, (p) => (known = p)).then(
              ({ principal, rule, purpose }) => {
                access = Object.freeze({ principal, rule, ...(purpose ? { purpose } : {}) });
                // Handlers get the principal, not the credential: nothing downstream can log or forward it.
                metadata.remove('authorization');
                accessByMetadata.set(metadata, access);
                nextMetadata(metadata);
              },
              (err: unknown) => refuse(err, known),
            );
          },
          onReceiveMessage: (message, nextMessage) => {
            if (refused || !access) return;
            const tenant = tenantOf(message);
            if (tenant !== undefined) {
              try {
                assertTenantAccess(access.principal, tenant);
              } catch (err) {
                refuse(err, access.principal);
                return;
              }
            }
            allowOnce();
            nextMessage(message);
          },
          onReceiveHalfClose: (nextHalfClose) => {
            if (refused) return;
            allowOnce();
            nextHalfClose();
          },
        });
      },
    });
    return intercepting;
  };
}
