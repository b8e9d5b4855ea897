/**
 * AuditProofs over the audit service's gRPC API (`sealpost.audit.v1.AuditLog/GetInclusionProof`), dialled with the
 * vault's own mutual-TLS identity (`spiffe://<trust domain>/contact-vault`, which the permission table lets read tree
 * heads and proofs). The audit server is recognised by its SPIFFE id, not by a DNS name.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { parseSpiffeId } from '@sealpost/access';
import type { SealpostConfig } from '@sealpost/config';
import { auditV1 } from '@sealpost/proto';
import { VaultError } from '../../domain';
import type { AuditInclusion, AuditProofs, AwaitInclusionOptions } from '../../ports/audit-proofs';

const AuditLogClient = grpc.makeGenericClientConstructor(auditV1.AuditLogService, 'AuditLog');
const HASH_BYTES = 32;

export interface GrpcAuditProofsOptions {
  /** `host:port` of the audit service (`config.grpc.peers.audit`, SEALPOST_AUDIT_GRPC_ADDR). */
  readonly address: string;
  /** The vault's own certificate and trust bundle (`config.tls`); read again for every wait, so rotated files count. */
  readonly tls: { readonly caFile: string; readonly certFile: string; readonly keyFile: string };
  readonly trustDomain: string;
  /** When set, the audit server may also present `spiffe://<td>/ns/<namespace>/sa/audit` (csi-driver-spiffe). */
  readonly spiffeNamespace?: string;
  /** Bound of one wait (SEALPOST_VAULT_AUDIT_PROOF_WAIT_SECONDS). */
  readonly maxWaitMs: number;
  /** Deadline of one call (default 5 s, never beyond the bound). */
  readonly callTimeoutMs?: number;
  /** Backoff between attempts: doubles from `initialMs` up to `maxMs` (default 250 ms → 3 s). */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
}

/**
 * Statuses that mean "not yet" or "not now": the entry is not appended yet (NOT_FOUND), no head covers it yet
 * (OUT_OF_RANGE, or UNAVAILABLE NO_SIGNED_TREE_HEAD), or the service is down, restarting or slow. Anything else
 * (PERMISSION_DENIED, UNAUTHENTICATED, INVALID_ARGUMENT, INTERNAL, …) will not change by waiting.
 */
const RETRYABLE: ReadonlySet<number> = new Set([
  grpc.status.NOT_FOUND,
  grpc.status.OUT_OF_RANGE,
  grpc.status.UNAVAILABLE,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.ABORTED,
]);

/** The stable reason the audit service sent (metadata), else the status name; never a message text. */
function reasonOf(err: grpc.ServiceError): string {
  const [reason] = err.metadata?.get('x-sealpost-reason') ?? [];
  return typeof reason === 'string' && reason !== '' ? reason : (grpc.status[err.code] ?? 'UNKNOWN');
}

function uriSans(cert: PeerCertificate): string[] {
  return (cert.subjectaltname ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => entry.slice(4));
}

const invalidProof = (what: string): VaultError =>
  new VaultError('AUDIT_PROOF_INVALID', `the audit service answered a malformed inclusion proof (${what})`);

function count(value: string | number | undefined, what: string): number {
  const n = typeof value === 'number' ? value : Number(value ?? 'x');
  if (!Number.isSafeInteger(n) || n < 0) throw invalidProof(what);
  return n;
}

function hash(value: Uint8Array | undefined, what: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== HASH_BYTES) throw invalidProof(what);
  return Uint8Array.from(value);
}

/** Checks the shape of an answer (sizes, hash lengths, a head present); the proof itself is checked by the caller. */
function inclusionOf(entryId: string, res: auditV1.InclusionProof): AuditInclusion {
  const head = res.treeHead;
  if (!head || !head.timestamp) throw invalidProof('no signed tree head');
  const treeSize = count(res.treeSize, 'tree size');
  if (count(head.treeSize, 'tree head size') !== treeSize) throw invalidProof('tree sizes differ');
  const leafIndex = count(res.leafIndex, 'leaf index');
  if (leafIndex >= treeSize) throw invalidProof('leaf index outside the tree');
  const timestamp = head.timestamp.getTime();
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw invalidProof('tree head time');
  return {
    entryId,
    leafIndex,
    leafHash: hash(res.leafHash, 'leaf hash'),
    hashes: res.hashes.map((h, i) => hash(h, `proof hash ${i}`)),
    treeHead: {
      logId: head.logId,
      treeSize,
      rootHash: Buffer.from(hash(head.rootHash, 'root hash')).toString('hex'),
      timestamp,
      jws: head.jws,
      kid: head.kid,
    },
  };
}

export class GrpcAuditProofs implements AuditProofs {
  private closed = false;
  private readonly clients = new Set<grpc.Client>();
  private readonly sleepers = new Set<() => void>();

  constructor(private readonly options: GrpcAuditProofsOptions) {}

  async awaitInclusion(entryId: string, options: AwaitInclusionOptions = {}): Promise<AuditInclusion> {
    const bound = this.options.maxWaitMs;
    const started = Date.now();
    const client = await this.connect();
    try {
      let delay = this.options.backoff?.initialMs ?? 250;
      const maxDelay = this.options.backoff?.maxMs ?? 3000;
      let last = 'not attempted';
      for (;;) {
        if (this.closed) throw new VaultError('AUDIT_UNAVAILABLE', 'the vault is stopping; the wait was abandoned');
        const remaining = bound - (Date.now() - started);
        try {
          const res = await this.getInclusionProof(
            client,
            entryId,
            Math.max(500, Math.min(this.options.callTimeoutMs ?? 5000, remaining)),
          );
          return inclusionOf(entryId, res);
        } catch (err) {
          if (err instanceof VaultError) throw err;
          const e = err as grpc.ServiceError;
          if (!RETRYABLE.has(e.code)) {
            throw new VaultError(
              'AUDIT_UNAVAILABLE',
              `the audit service refused the inclusion-proof request (${reasonOf(e)})`,
              undefined,
              { cause: err },
            );
          }
          last = reasonOf(e);
        }
        const waited = Date.now() - started;
        if (waited >= bound) {
          throw new VaultError(
            'AUDIT_UNAVAILABLE',
            `no signed inclusion proof of the audit entry within ${Math.round(bound / 1000)} s (last: ${last})`,
          );
        }
        await options.onWaiting?.(waited, bound);
        await this.sleep(Math.min(delay, bound - waited));
        delay = Math.min(delay * 2, maxDelay);
      }
    } finally {
      this.clients.delete(client);
      client.close();
    }
  }

  /** Abandons every wait (they fail AUDIT_UNAVAILABLE) and closes their channels. */
  close(): void {
    this.closed = true;
    for (const wake of this.sleepers) wake();
    for (const client of this.clients) client.close();
  }

  /**
   * A channel per wait, with the certificate files read now: short-lived certificates are rotated on disk, and
   * erasures are rare enough that a channel per erasure costs nothing worth caching.
   */
  private async connect(): Promise<grpc.Client> {
    const { tls, trustDomain, spiffeNamespace, address } = this.options;
    let credentials: grpc.ChannelCredentials;
    try {
      const [ca, key, cert] = await Promise.all([readFile(tls.caFile), readFile(tls.keyFile), readFile(tls.certFile)]);
      credentials = grpc.credentials.createSsl(ca, key, cert, {
        // Service certificates name a SPIFFE id, not a host: the server must be `audit` of our trust domain.
        checkServerIdentity: (_host, peer) => {
          const ids = uriSans(peer).filter((uri) => uri.startsWith('spiffe://'));
          const id = ids.length === 1 && ids[0] !== undefined ? parseSpiffeId(ids[0]) : undefined;
          const ok =
            id !== undefined &&
            id.trustDomain === trustDomain &&
            id.service === 'audit' &&
            (id.namespace === undefined || id.namespace === spiffeNamespace);
          return ok ? undefined : new Error('the server is not the audit service of this trust domain');
        },
      });
    } catch (cause) {
      throw new VaultError(
        'AUDIT_UNAVAILABLE',
        "the vault's TLS files for dialling the audit service are unreadable",
        undefined,
        {
          cause,
        },
      );
    }
    const host = address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    // TLS server names must not be IP addresses (RFC 6066); the name is not what identifies the server anyway.
    const client = new AuditLogClient(
      address,
      credentials,
      isIP(host) !== 0 ? { 'grpc.ssl_target_name_override': 'sealpost-audit' } : {},
    );
    this.clients.add(client);
    return client;
  }

  private getInclusionProof(client: grpc.Client, entryId: string, timeoutMs: number): Promise<auditV1.InclusionProof> {
    const request = auditV1.GetInclusionProofRequest.fromPartial({
      entry: { $case: 'entryId', value: entryId },
      treeSize: '0',
    });
    return new Promise((resolve, reject) => {
      (
        client as unknown as {
          getInclusionProof: (
            r: auditV1.GetInclusionProofRequest,
            m: grpc.Metadata,
            o: grpc.CallOptions,
            cb: (e: grpc.ServiceError | null, r: auditV1.InclusionProof) => void,
          ) => void;
        }
      ).getInclusionProof(request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) =>
        err ? reject(err) : resolve(res),
      );
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }
}

/**
 * The vault's AuditProofs from its configuration: the audit service where SEALPOST_AUDIT_GRPC_ADDR says, dialled
 * with the vault's own certificate (SEALPOST_TLS_*), waiting at most SEALPOST_VAULT_AUDIT_PROOF_WAIT_SECONDS.
 */
export function grpcAuditProofsOf(config: SealpostConfig): GrpcAuditProofs {
  return new GrpcAuditProofs({
    address: config.grpc.peers.audit,
    tls: { caFile: config.tls.caFile, certFile: config.tls.certFile, keyFile: config.tls.keyFile },
    trustDomain: config.trustDomain,
    ...(config.spiffeNamespace !== undefined ? { spiffeNamespace: config.spiffeNamespace } : {}),
    maxWaitMs: config.vault.auditProofWaitSeconds * 1000,
  });
}
