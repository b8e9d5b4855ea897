import { createHash } from 'node:crypto';
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
  /**
   * Verified tokens remembered so an operator's repeated calls skip the signature check (default 10,000; 0 turns
   * it off). An entry is used until the token would fail its time checks, and within the age and use bounds below.
   */
  readonly verifiedCacheEntries?: number;
  /** How long a verified token is trusted without a new signature check (default 60 s). */
  readonly verifiedCacheMaxAgeMs?: number;
  /** How many calls a verified token serves before its signature is checked again (default 10,000). */
  readonly verifiedCacheMaxUses?: number;
  /** Clock in ms (tests); also the verifier's current time. */
  readonly now?: () => number;
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

  const now = options.now ?? Date.now;
  const toleranceSeconds = options.clockToleranceSeconds ?? 5;
  const verified = new VerifiedTokenCache(
    options.verifiedCacheEntries ?? DEFAULT_VERIFIED_CACHE_ENTRIES,
    options.verifiedCacheMaxAgeMs ?? DEFAULT_VERIFIED_CACHE_MAX_AGE_MS,
    options.verifiedCacheMaxUses ?? DEFAULT_VERIFIED_CACHE_MAX_USES,
  );

  return {
    async verify(token: string): Promise<OperatorPrincipal> {
      const at = now();
      const cacheId = verified.enabled ? verified.idOf(token) : '';
      const cached = verified.enabled ? verified.get(cacheId, at) : undefined;
      if (cached !== undefined) return cached;
      let payload: jose.JWTPayload;
      try {
        ({ payload } = await jose.jwtVerify(token, keys, { ...verifyOptions, currentDate: new Date(at) }));
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
      const principal: OperatorPrincipal = Object.freeze({
        kind: 'operator',
        subject: sub,
        tenant,
        roles: Object.freeze([...roles]),
        amr: Object.freeze([...amr]),
        authTime,
        sessionVersion,
        issuer: options.issuer,
      });
      // Signature, issuer, audience, type and claim shapes never change for the same bytes; only time does. jose
      // accepts while now < exp + tolerance and now - iat <= max lifetime + tolerance (and nbf, once passed, stays
      // passed), so the entry ends at the earlier of the two.
      if (verified.enabled) {
        const expiresAtMs = (Math.min(exp, iat + maxLifetime) + toleranceSeconds) * 1000;
        verified.set(cacheId, principal, at, expiresAtMs);
      }
      return principal;
    },
  };
}

const DEFAULT_VERIFIED_CACHE_ENTRIES = 10_000;
const DEFAULT_VERIFIED_CACHE_MAX_AGE_MS = 60_000;
const DEFAULT_VERIFIED_CACHE_MAX_USES = 10_000;

/**
 * Principals of tokens that passed verification, by SHA-256 of the token (the map holds no bearer tokens). Bounded
 * by entries (oldest dropped first), by age and uses (like the key caches), and by the token's own expiry; failures
 * are never remembered. Checks that depend on the call (step-up window, session revocation, permissions) stay per
 * call in the interceptor.
 */
class VerifiedTokenCache {
  private readonly entries = new Map<string, { principal: OperatorPrincipal; usableUntilMs: number; uses: number }>();

  constructor(
    private readonly maxEntries: number,
    private readonly maxAgeMs: number,
    private readonly maxUses: number,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 0) throw new RangeError('verifiedCacheEntries must be >= 0');
    if (!(maxAgeMs >= 0)) throw new RangeError('verifiedCacheMaxAgeMs must be >= 0');
    if (!Number.isInteger(maxUses) || maxUses < 0) throw new RangeError('verifiedCacheMaxUses must be >= 0');
  }

  get enabled(): boolean {
    return this.maxEntries > 0 && this.maxAgeMs > 0 && this.maxUses > 0;
  }

  idOf(token: string): string {
    return createHash('sha256').update(token).digest('base64url');
  }

  get(id: string, nowMs: number): OperatorPrincipal | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    if (nowMs < entry.usableUntilMs && entry.uses < this.maxUses) {
      entry.uses += 1;
      return entry.principal;
    }
    this.entries.delete(id);
    return undefined;
  }

  set(id: string, principal: OperatorPrincipal, nowMs: number, expiresAtMs: number): void {
    const usableUntilMs = Math.min(expiresAtMs, nowMs + this.maxAgeMs);
    if (usableUntilMs <= nowMs) return;
    this.entries.delete(id);
    // The verification that put it here was its first use.
    this.entries.set(id, { principal, usableUntilMs, uses: 1 });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}
