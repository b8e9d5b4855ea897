import * as crypto from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as jose from 'jose';
import { DEFAULT_AUDIENCE, DEV_ISSUER } from './dev-issuer-constants';
import { assertDevModeAllowed, type RuntimeMode } from './dev-mode';
import { ACCESS_TOKEN_TYPE, MAX_ACCESS_TOKEN_LIFETIME_SECONDS } from './operator-token';

export { DEV_ISSUER, DEFAULT_AUDIENCE } from './dev-issuer-constants';

const KEY_FILE = 'dev-token-signing.jwk.json';
const JWKS_FILE = 'jwks.json';

export interface DevTokenParams {
  readonly role?: string;
  readonly roles?: readonly string[];
  readonly tenant: string;
  /** When true the token says the operator passed MFA (`amr: [pwd, mfa]`) at `authTime` (default now). */
  readonly mfa?: boolean;
  /** Lifetime in seconds; default and maximum 300. */
  readonly ttl?: number;
  readonly subject?: string;
  readonly authTime?: number;
  readonly sessionVersion?: number;
  readonly audience?: string;
}

/** The development signing key: issues dev tokens and publishes its public JWKS for verifiers. */
export interface DevTokenIssuer {
  readonly issuer: string;
  readonly jwks: jose.JSONWebKeySet;
  issue(params: DevTokenParams): Promise<string>;
}

async function loadOrCreateKey(dir: string): Promise<jose.JWK> {
  const file = path.join(dir, KEY_FILE);
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as jose.JWK;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const { privateKey } = await jose.generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  jwk.kid = await jose.calculateJwkThumbprint(jwk);
  jwk.alg = 'EdDSA';
  jwk.use = 'sig';
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(jwk), { mode: 0o600 });
  // A concurrent first run may have won the race; link() fails instead of overwriting, and we read its key.
  try {
    await fs.link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return JSON.parse(await fs.readFile(file, 'utf8')) as jose.JWK;
  } finally {
    await fs.rm(tmp, { force: true });
  }
  return jwk;
}

/**
 * Opens the development token issuer in `dir`, creating its Ed25519 key on first run (file mode 0600).
 * Throws `DEV_MODE_REFUSED` in production mode.
 */
export async function openDevTokenIssuer(options: {
  dir: string;
  mode: RuntimeMode | string;
}): Promise<DevTokenIssuer> {
  assertDevModeAllowed(options.mode, 'the development token issuer');
  const jwk = await loadOrCreateKey(options.dir);
  const key = await jose.importJWK(jwk, 'EdDSA');
  const { d: _private, ...publicJwk } = jwk;
  // Verifiers in embedded mode read the public half from here (SEALPOST_JWKS_FILE's default).
  await fs.writeFile(path.join(options.dir, JWKS_FILE), JSON.stringify({ keys: [publicJwk] }), { mode: 0o644 });
  return {
    issuer: DEV_ISSUER,
    jwks: { keys: [publicJwk] },
    async issue(params: DevTokenParams): Promise<string> {
      const ttl = params.ttl ?? MAX_ACCESS_TOKEN_LIFETIME_SECONDS;
      if (ttl <= 0 || ttl > MAX_ACCESS_TOKEN_LIFETIME_SECONDS) throw new RangeError('ttl must be in (0, 300] seconds');
      const roles = params.roles ?? (params.role ? [params.role] : []);
      const now = Math.floor(Date.now() / 1000);
      return new jose.SignJWT({
        tenant: params.tenant,
        roles,
        amr: params.mfa ? ['pwd', 'mfa'] : ['pwd'],
        auth_time: params.authTime ?? now,
        sv: params.sessionVersion ?? 0,
      })
        .setProtectedHeader({ alg: 'EdDSA', typ: ACCESS_TOKEN_TYPE, kid: jwk.kid })
        .setIssuer(DEV_ISSUER)
        .setAudience(params.audience ?? DEFAULT_AUDIENCE)
        .setSubject(params.subject ?? `dev-${crypto.randomUUID()}`)
        .setJti(crypto.randomUUID())
        .setIssuedAt(now)
        .setExpirationTime(now + ttl)
        .sign(key);
    },
  };
}

/** Issues one development access token; throws `DEV_MODE_REFUSED` in production mode. */
export async function issueDevToken(
  params: DevTokenParams & { dir: string; mode: RuntimeMode | string },
): Promise<string> {
  const issuer = await openDevTokenIssuer(params);
  return issuer.issue(params);
}
