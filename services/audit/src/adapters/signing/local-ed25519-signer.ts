import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as edSign, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type JWK, calculateJwkThumbprint, exportJWK } from 'jose';
import type { TreeHeadSigner } from '../../ports/tree-head-signer';
import { jwsSigningInput } from './jws';

/**
 * Ed25519 tree-head signer with a key file (PKCS#8 PEM, mode 0600, created on first use) — embedded mode.
 * kid = RFC 7638 thumbprint of the public key, so a new key file is a new kid.
 */
export class LocalEd25519Signer implements TreeHeadSigner {
  readonly alg = 'EdDSA' as const;

  private constructor(
    private readonly privateKey: KeyObject,
    private readonly jwk: JWK,
    readonly kid: string,
  ) {}

  /** Loads the key from `file`, creating it (0600, directory 0700) when absent. */
  static async fromFile(file: string): Promise<LocalEd25519Signer> {
    let pem: string;
    if (fs.existsSync(file)) {
      const mode = fs.statSync(file).mode & 0o777;
      if (mode & 0o077) throw new Error(`tree-head key file ${file} must not be readable by others (mode 0600)`);
      pem = fs.readFileSync(file, 'utf8');
    } else {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      // wx: never overwrite a key another process created meanwhile.
      try {
        fs.writeFileSync(file, pem, { mode: 0o600, flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        pem = fs.readFileSync(file, 'utf8');
      }
    }
    const privateKey = createPrivateKey(pem);
    const jwk = await exportJWK(createPublicKey(privateKey));
    const kid = await calculateJwkThumbprint(jwk);
    return new LocalEd25519Signer(privateKey, { ...jwk, kid, alg: 'EdDSA', use: 'sig' }, kid);
  }

  /** The public JWK (kid, alg) of an existing key file; never creates one. Throws if the file is absent. */
  static async publicJwkFromFile(file: string): Promise<JWK> {
    const privateKey = createPrivateKey(fs.readFileSync(file, 'utf8'));
    const jwk = await exportJWK(createPublicKey(privateKey));
    const kid = await calculateJwkThumbprint(jwk);
    return { ...jwk, kid, alg: 'EdDSA', use: 'sig' };
  }

  async sign(payload: Uint8Array): Promise<string> {
    const input = jwsSigningInput(this.alg, this.kid, payload);
    const sig = edSign(null, Buffer.from(input, 'ascii'), this.privateKey);
    return `${input}.${sig.toString('base64url')}`;
  }

  async publicJwk(): Promise<JWK> {
    return { ...this.jwk };
  }
}
