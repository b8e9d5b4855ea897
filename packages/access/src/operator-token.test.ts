import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as jose from 'jose';
import { DEV_ISSUER, issueDevToken, openDevTokenIssuer } from './dev-token';
import { createOperatorTokenVerifier } from './operator-token';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealpost-token-'));
});
afterEach(() => fs.rm(dir, { recursive: true, force: true }));

describe('dev tokens', () => {
  it('creates the Ed25519 signing key on first run with mode 0600 and reuses it', async () => {
    const first = await openDevTokenIssuer({ dir, mode: 'development' });
    const stat = await fs.stat(path.join(dir, 'dev-token-signing.jwk.json'));
    expect(stat.mode & 0o777).toBe(0o600);
    const second = await openDevTokenIssuer({ dir, mode: 'development' });
    expect(second.jwks).toEqual(first.jwks);
    expect(first.jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' });
    expect(first.jwks.keys[0]).not.toHaveProperty('d');
  });

  it('issues tokens the verifier maps to an operator principal', async () => {
    const issuer = await openDevTokenIssuer({ dir, mode: 'development' });
    const verifier = await createOperatorTokenVerifier({
      mode: 'development',
      issuer: DEV_ISSUER,
      audience: 'sealpost',
      jwks: { keys: issuer.jwks },
    });
    const token = await issueDevToken({
      dir,
      mode: 'development',
      role: 'dpo',
      tenant: 't9',
      mfa: true,
      ttl: 120,
      subject: 'op-7',
    });
    const principal = await verifier.verify(token);
    expect(principal).toMatchObject({
      kind: 'operator',
      subject: 'op-7',
      tenant: 't9',
      roles: ['dpo'],
      amr: ['pwd', 'mfa'],
      issuer: DEV_ISSUER,
    });
    expect(Math.abs(principal.authTime - Date.now() / 1000)).toBeLessThan(5);
    expect(jose.decodeProtectedHeader(token)).toMatchObject({ alg: 'EdDSA', typ: 'at+jwt' });
    const withoutMfa = await verifier.verify(
      await issueDevToken({ dir, mode: 'development', role: 'support', tenant: 't9' }),
    );
    expect(withoutMfa.amr).toEqual(['pwd']);
  });

  it('refuses a lifetime over 5 minutes', async () => {
    await expect(issueDevToken({ dir, mode: 'development', role: 'dpo', tenant: 't1', ttl: 301 })).rejects.toThrow(
      RangeError,
    );
  });

  it('is refused in production: issuing, and trusting the dev issuer', async () => {
    await expect(issueDevToken({ dir, mode: 'production', role: 'admin', tenant: 't1' })).rejects.toMatchObject({
      code: 'DEV_MODE_REFUSED',
    });
    await expect(fs.readdir(dir)).resolves.toEqual([]);
    await expect(
      createOperatorTokenVerifier({
        mode: 'production',
        issuer: DEV_ISSUER,
        audience: 'sealpost',
        jwks: { keys: { keys: [] } },
      }),
    ).rejects.toMatchObject({ code: 'DEV_MODE_REFUSED' });
  });
});

describe('createOperatorTokenVerifier', () => {
  it('reads keys from a JWKS file', async () => {
    const issuer = await openDevTokenIssuer({ dir, mode: 'test' });
    const file = path.join(dir, 'jwks.json');
    await fs.writeFile(file, JSON.stringify(issuer.jwks));
    const verifier = await createOperatorTokenVerifier({
      mode: 'test',
      issuer: DEV_ISSUER,
      audience: 'sealpost',
      jwks: { file },
    });
    await expect(verifier.verify(await issuer.issue({ role: 'auditor', tenant: 't1' }))).resolves.toMatchObject({
      roles: ['auditor'],
    });
  });

  it('fetches keys from a JWKS URL, and reports an unreachable issuer as UNAVAILABLE', async () => {
    const issuer = await openDevTokenIssuer({ dir, mode: 'test' });
    const server = http.createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(issuer.jwks));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const verifier = await createOperatorTokenVerifier({
        mode: 'test',
        issuer: DEV_ISSUER,
        audience: 'sealpost',
        jwks: { url: `http://127.0.0.1:${port}/jwks.json` },
      });
      await expect(verifier.verify(await issuer.issue({ role: 'admin', tenant: 't1' }))).resolves.toMatchObject({
        roles: ['admin'],
      });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    const down = await createOperatorTokenVerifier({
      mode: 'test',
      issuer: DEV_ISSUER,
      audience: 'sealpost',
      jwks: { url: `http://127.0.0.1:${port}/jwks.json` },
    });
    await expect(down.verify(await issuer.issue({ role: 'admin', tenant: 't1' }))).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      reason: 'TOKEN_KEYS_UNAVAILABLE',
    });
  });

  it('refuses plain-HTTP JWKS in production and symmetric algorithms anywhere', async () => {
    await expect(
      createOperatorTokenVerifier({
        mode: 'production',
        issuer: 'https://id.example',
        audience: 'sealpost',
        jwks: { url: 'http://id.example/jwks' },
      }),
    ).rejects.toThrow(/https/);
    await expect(
      createOperatorTokenVerifier({
        mode: 'test',
        issuer: 'https://id.example',
        audience: 'sealpost',
        jwks: { keys: { keys: [] } },
        algorithms: ['HS256' as 'ES256'],
      }),
    ).rejects.toThrow(/not allowed/);
  });

  it('refuses claims of the wrong shape', async () => {
    const { privateKey, publicKey } = await jose.generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'k', alg: 'EdDSA' };
    const verifier = await createOperatorTokenVerifier({
      mode: 'test',
      issuer: 'https://id.test',
      audience: 'sealpost',
      jwks: { keys: { keys: [jwk] } },
    });
    const sign = (claims: Record<string, unknown>) =>
      new jose.SignJWT({ tenant: 't1', roles: ['dpo'], ...claims })
        .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: 'k' })
        .setIssuer('https://id.test')
        .setAudience('sealpost')
        .setSubject('op-1')
        .setIssuedAt()
        .setExpirationTime('1m')
        .sign(privateKey);
    await expect(verifier.verify(await sign({}))).resolves.toMatchObject({ authTime: 0, sessionVersion: 0, amr: [] });
    for (const bad of [
      { roles: 'dpo' },
      { roles: [1] },
      { tenant: '' },
      { tenant: 5 },
      { amr: 'mfa' },
      { auth_time: '1' },
      { sv: 1.5 },
    ]) {
      await expect(verifier.verify(await sign(bad))).rejects.toMatchObject({
        code: 'UNAUTHENTICATED',
        reason: 'TOKEN_INVALID',
      });
    }
  });
});

describe('verified-token cache', () => {
  async function setup(
    options: { verifiedCacheEntries?: number; verifiedCacheMaxAgeMs?: number; verifiedCacheMaxUses?: number } = {},
  ) {
    const { privateKey, publicKey } = await jose.generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'k', alg: 'EdDSA' };
    const clock = { ms: Math.floor(Date.now() / 1000) * 1000 };
    const verifier = await createOperatorTokenVerifier({
      mode: 'test',
      issuer: 'https://id.test',
      audience: 'sealpost',
      jwks: { keys: { keys: [jwk] } },
      now: () => clock.ms,
      ...options,
    });
    const sign = (subject: string, lifetimeSeconds = 120) => {
      const iat = Math.floor(clock.ms / 1000);
      return new jose.SignJWT({ tenant: 't1', roles: ['support'] })
        .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: 'k' })
        .setIssuer('https://id.test')
        .setAudience('sealpost')
        .setSubject(subject)
        .setIssuedAt(iat)
        .setExpirationTime(iat + lifetimeSeconds)
        .sign(privateKey);
    };
    // Signature checks actually made (jose verifies through WebCrypto).
    const checks = jest.spyOn(crypto.subtle, 'verify');
    return { verifier, sign, clock, checks };
  }
  afterEach(() => jest.restoreAllMocks());

  it('answers a repeated token without a new signature check, and never past the token expiry', async () => {
    const { verifier, sign, clock, checks } = await setup();
    const token = await sign('op-1', 30);
    const first = await verifier.verify(token);
    await expect(verifier.verify(token)).resolves.toBe(first);
    expect(checks).toHaveBeenCalledTimes(1);
    clock.ms += 34_000; // exp + 4 s: still inside the 5 s clock tolerance, as without the cache
    await expect(verifier.verify(token)).resolves.toBe(first);
    clock.ms += 1_000; // exp + tolerance: expired, cached or not
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_EXPIRED' });
  });

  it('checks the signature again after the max age, and keeps at most the configured number of tokens', async () => {
    const { verifier, sign, clock, checks } = await setup({ verifiedCacheMaxAgeMs: 1_000, verifiedCacheEntries: 1 });
    const a = await sign('op-a');
    const b = await sign('op-b');
    await verifier.verify(a);
    await verifier.verify(a);
    expect(checks).toHaveBeenCalledTimes(1);
    clock.ms += 1_000;
    await verifier.verify(a);
    expect(checks).toHaveBeenCalledTimes(2);
    await verifier.verify(b); // evicts a
    await expect(verifier.verify(a)).resolves.toMatchObject({ subject: 'op-a' });
    expect(checks).toHaveBeenCalledTimes(4);
  });

  it('checks the signature again after the max uses', async () => {
    const { verifier, sign, checks } = await setup({ verifiedCacheMaxUses: 3 });
    const token = await sign('op-1');
    for (let i = 0; i < 7; i++) await verifier.verify(token);
    // Calls 1 and 4 and 7 verify; each verification serves itself and the next two calls.
    expect(checks).toHaveBeenCalledTimes(3);
  });

  it('never remembers a failure, and a token altered after a cached verification is refused', async () => {
    const { verifier, sign, checks } = await setup();
    const token = await sign('op-1');
    await verifier.verify(token);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, roles: ['admin'] })).toString('base64url')}.${signature}`;
    for (let i = 0; i < 2; i++) {
      await expect(verifier.verify(forged)).rejects.toMatchObject({ reason: 'TOKEN_INVALID' });
    }
    expect(checks).toHaveBeenCalledTimes(3);
  });

  it('is off with verifiedCacheEntries 0', async () => {
    const { verifier, sign, checks } = await setup({ verifiedCacheEntries: 0 });
    const token = await sign('op-1');
    await verifier.verify(token);
    await verifier.verify(token);
    expect(checks).toHaveBeenCalledTimes(2);
  });
});
