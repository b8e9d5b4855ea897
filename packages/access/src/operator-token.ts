import * as fs from 'node:fs/promises';
import * as jose from 'jose';
import { DEV_ISSUER } from './dev-issuer-constants';
import { assertDevModeAllowed, type RuntimeMode } from './dev-mode';
import { AccessError } from './errors';
import type { OperatorPrincipal } from './principal';

/** Only asymmetric algorithms: a symmetric one would let anyone holding the public key forge tokens. */
export const OPERATOR_TOKEN_ALGORITHMS = ['EdDSA', 'ES256'] as const;
export type OperatorTokenAlgorithm = (typeof OPERATOR_TOKEN_ALGORITHMS)[number];
/** JWT `typ` of access tokens (RFC 9068); an ID token or a consent token is not accepted as one. */
export const ACCESS_TOKEN_TYPE = 'at+jwt';
/** Operator access tokens live at most this long (DESIGN: ≤ 5 minutes). */
export const MAX_ACCESS_TOKEN_LIFETIME_SECONDS = 300;

export type JwksSource = { readonly url: string } | { readonly file: string } | { readonly keys: jose.JSONWebKeySet };

export interface OperatorTokenVerifierOptions {
  readonly mode: RuntimeMode | string;
  readonly issuer: string;
  readonly audience: string;
  readonly jwks: JwksSource;
  readonly algorithms?: readonly OperatorTokenAlgorithm[];
  readonly type?: string;
  readonly maxLifetimeSeconds?: number;
  readonly clockToleranceSeconds?: number;
}

/** Verifies operator access tokens and maps their claims to a Principal. */
export interface OperatorTokenVerifier {
  /** Throws AccessError UNAUTHENTICATED (TOKEN_INVALID / TOKEN_EXPIRED) or UNAVAILABLE (TOKEN_KEYS_UNAVAILABLE). */
  verify(token: string): Promise<OperatorPrincipal>;
}

function stringArray(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((v) => typeof v === 'string') ? (value as string[]) : undefined;
}

const invalid = (cause?: unknown): AccessError =>
  new AccessError('UNAUTHENTICATED', 'TOKEN_INVALID', 'the access token is not valid', { cause });

/**
 * Builds a verifier with algorithm, issuer, audience, expiry, lifetime and `typ` all pinned.
 * Throws `DEV_MODE_REFUSED` for the dev issuer in production, and refuses a non-HTTPS JWKS URL there.
 */
export async function createOperatorTokenVerifier(
  options: OperatorTokenVerifierOptions,
): Promise<OperatorTokenVerifier> {
  if (options.issuer === DEV_ISSUER) assertDevModeAllowed(options.mode, 'the development token issuer');
  const algorithms = [...(options.algorithms ?? OPERATOR_TOKEN_ALGORITHMS)];
  for (const alg of algorithms) {
    if (!(OPERATOR_TOKEN_ALGORITHMS as readonly string[]).includes(alg))
      throw new TypeError(`algorithm ${alg} is not allowed`);
  }
  const maxLifetime = options.maxLifetimeSeconds ?? MAX_ACCESS_TOKEN_LIFETIME_SECONDS;
  if (maxLifetime > MAX_ACCESS_TOKEN_LIFETIME_SECONDS) throw new TypeError('access tokens may live at most 300 s');

  let keys: jose.JWTVerifyGetKey;
  if ('url' in options.jwks) {
    const url = new URL(options.jwks.url);
    if (options.mode === 'production' && url.protocol !== 'https:') throw new TypeError('the JWKS URL must use https');
    keys = jose.createRemoteJWKSet(url, { timeoutDuration: 3000, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
  } else if ('file' in options.jwks) {
    const parsed = JSON.parse(await fs.readFile(options.jwks.file, 'utf8')) as jose.JSONWebKeySet;
    keys = jose.createLocalJWKSet(parsed);
  } else {
    keys = jose.createLocalJWKSet(options.jwks.keys);
  }

  const verifyOptions: jose.JWTVerifyOptions = {
    algorithms,
    issuer: options.issuer,
    audience: options.audience,
    typ: options.type ?? ACCESS_TOKEN_TYPE,
    requiredClaims: ['exp', 'iat', 'sub'],
    maxTokenAge: maxLifetime,
    clockTolerance: options.clockToleranceSeconds ?? 5,
  };

  return {
    async verify(token: string): Promise<OperatorPrincipal> {
      let payload: jose.JWTPayload;
      try {
        ({ payload } = await jose.jwtVerify(token, keys, verifyOptions));
      } catch (err) {
        if (err instanceof jose.errors.JWTExpired) {
          throw new AccessError('UNAUTHENTICATED', 'TOKEN_EXPIRED', 'the access token has expired', { cause: err });
        }
        if (err instanceof jose.errors.JOSEError && !(err instanceof jose.errors.JWKSTimeout)) throw invalid(err);
        // Network trouble reaching the issuer is not the caller's fault: let them retry the same token.
        throw new AccessError('UNAVAILABLE', 'TOKEN_KEYS_UNAVAILABLE', 'the token issuer keys are unavailable', {
          cause: err,
        });
      }
      const { sub, exp, iat } = payload;
      if (typeof sub !== 'string' || sub === '' || typeof exp !== 'number' || typeof iat !== 'number') throw invalid();
      if (exp - iat > maxLifetime) throw invalid();
      const tenant = payload['tenant'];
      const roles = stringArray(payload['roles']);
      const amr = payload['amr'] === undefined ? [] : stringArray(payload['amr']);
      const authTime = payload['auth_time'] ?? 0;
      const sessionVersion = payload['sv'] ?? 0;
      if (typeof tenant !== 'string' || tenant === '' || !roles || !amr) throw invalid();
      if (typeof authTime !== 'number' || !Number.isInteger(sessionVersion) || typeof sessionVersion !== 'number') {
        throw invalid();
      }
      return Object.freeze({
        kind: 'operator',
        subject: sub,
        tenant,
        roles: Object.freeze([...roles]),
        amr: Object.freeze([...amr]),
        authTime,
        sessionVersion,
        issuer: options.issuer,
      });
    },
  };
}
