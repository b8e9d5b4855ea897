import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as edSign,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type JwsSigner, type PublicJwk, jwkThumbprint, jwsSigningInput } from './jws-signer';

/** A PKCS#8 PEM key, or a private JWK (JSON) as older contact-vault receipt key files hold. */
function parsePrivateKey(text: string): KeyObject {
  return text.trimStart().startsWith('{')
    ? createPrivateKey({ key: JSON.parse(text) as JsonWebKey, format: 'jwk' })
    : createPrivateKey(text);
}

function publicJwkOf(privateKey: KeyObject): PublicJwk {
  const pub = createPublicKey(privateKey).export({ format: 'jwk' });
  if (pub.kty !== 'OKP' || pub.crv !== 'Ed25519' || typeof pub.x !== 'string') throw new Error('not an Ed25519 key');
  return { kty: 'OKP', crv: 'Ed25519', x: pub.x, kid: jwkThumbprint(pub), alg: 'EdDSA', use: 'sig' };
}

/**
 * Ed25519 JWS signer with a key file (PKCS#8 PEM, or a private JWK; mode 0600; created as PEM on first use) —
 * embedded mode only.
 * kid = RFC 7638 thumbprint of the public key, so a new key file is a new kid.
 */
export class LocalEd25519JwsSigner implements JwsSigner {
  readonly alg = 'EdDSA' as const;
  readonly kid: string;

  private constructor(
    private readonly privateKey: KeyObject,
    private readonly jwk: PublicJwk,
    readonly typ: string,
  ) {
    this.kid = jwk.kid;
  }

  /** Loads the key from `file`, creating it (0600, directory 0700) when absent; refuses a group/world-readable file. */
  static async fromFile(file: string, options: { typ: string }): Promise<LocalEd25519JwsSigner> {
    let pem: string;
    if (fs.existsSync(file)) {
      const mode = fs.statSync(file).mode & 0o777;
      if (mode & 0o077) throw new Error(`signing key file ${file} must not be readable by others (mode 0600)`);
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
    const privateKey = parsePrivateKey(pem);
    return new LocalEd25519JwsSigner(privateKey, publicJwkOf(privateKey), options.typ);
  }

  /** The public JWK (kid, alg) of an existing key file; never creates one. Throws if the file is absent. */
  static async publicJwkFromFile(file: string): Promise<PublicJwk> {
    return publicJwkOf(parsePrivateKey(fs.readFileSync(file, 'utf8')));
  }

  async sign(payload: Uint8Array): Promise<string> {
    const input = jwsSigningInput({ alg: this.alg, kid: this.kid, typ: this.typ }, payload);
    const sig = edSign(null, Buffer.from(input, 'ascii'), this.privateKey);
    return `${input}.${sig.toString('base64url')}`;
  }

  async publicJwk(): Promise<PublicJwk> {
    return { ...this.jwk };
  }
}
