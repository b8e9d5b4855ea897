import { createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from '@sealpost/testkit';
import { derToJoseSignature } from './jws-signer';
import { LocalEd25519JwsSigner } from './local-ed25519-jws-signer';
import { verifyCompactJws } from './verify-jws';

const TYP = 'test-thing+jws';

function flipChar(s: string, at: number): string {
  return s.slice(0, at) + (s[at] === 'A' ? 'B' : 'A') + s.slice(at + 1);
}

describe('LocalEd25519JwsSigner', () => {
  it('creates a 0600 key file once, keeps its kid, and refuses a group/world-readable file', async () => {
    const dir = tempDir('crypto-jws');
    const keyFile = path.join(dir.path, 'keys', 'signing.pem');
    const signer = await LocalEd25519JwsSigner.fromFile(keyFile, { typ: TYP });
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    expect((await LocalEd25519JwsSigner.fromFile(keyFile, { typ: TYP })).kid).toBe(signer.kid);
    expect(await LocalEd25519JwsSigner.publicJwkFromFile(keyFile)).toEqual(await signer.publicJwk());
    fs.chmodSync(keyFile, 0o640);
    await expect(LocalEd25519JwsSigner.fromFile(keyFile, { typ: TYP })).rejects.toThrow(/mode 0600/);
  });

  it('signs compact JWS with header {alg, kid, typ} that verify by kid; tampering fails', async () => {
    const dir = tempDir('crypto-jws-sign');
    const signer = await LocalEd25519JwsSigner.fromFile(path.join(dir.path, 'k.pem'), { typ: TYP });
    const jws = await signer.sign(Buffer.from('{"n":1}'));
    const header = JSON.parse(Buffer.from(jws.split('.')[0]!, 'base64url').toString('utf8'));
    expect(header).toEqual({ alg: 'EdDSA', kid: signer.kid, typ: TYP });
    const keys = [await signer.publicJwk()];
    expect(verifyCompactJws(jws, keys, { typ: TYP }).payload.toString()).toBe('{"n":1}');
    expect(() => verifyCompactJws(flipChar(jws, jws.lastIndexOf('.') + 5), keys, { typ: TYP })).toThrow(/verify/);
    expect(() => verifyCompactJws(jws, keys, { typ: 'other+jws' })).toThrow(/typ/);
    const other = await LocalEd25519JwsSigner.fromFile(path.join(dir.path, 'other.pem'), { typ: TYP });
    const otherKeys = [await other.publicJwk()];
    expect(() => verifyCompactJws(jws, otherKeys, { typ: TYP })).toThrow(/kid/);
  });

  it('reads a private-JWK key file too, with the same RFC 7638 kid', async () => {
    const dir = tempDir('crypto-jws-jwk');
    const pemFile = path.join(dir.path, 'k.pem');
    const signer = await LocalEd25519JwsSigner.fromFile(pemFile, { typ: TYP });
    const jwkFile = path.join(dir.path, 'k.jwk.json');
    const jwk = createPrivateKey(fs.readFileSync(pemFile, 'utf8')).export({ format: 'jwk' });
    fs.writeFileSync(jwkFile, JSON.stringify(jwk), { mode: 0o600 });
    const fromJwk = await LocalEd25519JwsSigner.fromFile(jwkFile, { typ: TYP });
    expect(fromJwk.kid).toBe(signer.kid);
    expect(
      verifyCompactJws(await fromJwk.sign(Buffer.from('x')), [await signer.publicJwk()], { typ: TYP }),
    ).toBeTruthy();
  });
});

describe('DER → JOSE signature conversion', () => {
  it('left-pads short integers and strips DER sign bytes', () => {
    const r = Buffer.alloc(33, 0xaa);
    r[0] = 0x00; // sign byte for a high-bit r
    const s = Buffer.from([0x01, 0x02]);
    const der = Buffer.concat([Buffer.from([0x30, 2 + 33 + 2 + 2, 0x02, 33]), r, Buffer.from([0x02, 2]), s]);
    const raw = derToJoseSignature(der);
    expect(raw.length).toBe(64);
    expect(raw.subarray(0, 32).equals(Buffer.alloc(32, 0xaa))).toBe(true);
    expect(raw.subarray(32).equals(Buffer.concat([Buffer.alloc(30), s]))).toBe(true);
    expect(() => derToJoseSignature(der.subarray(0, der.length - 1))).toThrow(/DER/);
  });
});
