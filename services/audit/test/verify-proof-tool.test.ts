import { execFile } from 'node:child_process';
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { type JWK, calculateJwkThumbprint, exportJWK } from 'jose';
import type { InclusionProofBundle } from '@sealpost/audit-format';
import { LocalEd25519Signer } from '../src/adapters/signing/local-ed25519-signer';
import { jwsSigningInput } from '../src/adapters/signing/jws';
import { SqliteAuditLogStore } from '../src/adapters/sqlite/sqlite-audit-log-store';
import { FileWitness } from '../src/adapters/witness/file-witness';
import { FencedLogWriter } from '../src/app/append-entries';
import { signTreeHead } from '../src/app/sign-tree-head';
import { proveEntry } from '../src/app/verify';
import type { TreeHeadSigner } from '../src/ports/tree-head-signer';
import { sampleEntry } from './fixtures';

const run = promisify(execFile);
const TOOL = path.resolve(__dirname, '../tools/verify-proof.mjs');

/** ES256 signer with an in-memory P-256 key: the same JWS shape the KMS signer produces. */
async function es256Signer(): Promise<TreeHeadSigner> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return {
    kid,
    alg: 'ES256',
    async sign(payload) {
      const input = jwsSigningInput('ES256', kid, payload);
      const sig = cryptoSign('sha256', Buffer.from(input, 'ascii'), { key: privateKey, dsaEncoding: 'ieee-p1363' });
      return `${input}.${sig.toString('base64url')}`;
    },
    async publicJwk() {
      return { kty: 'EC', crv: 'P-256', x: jwk.x!, y: jwk.y!, kid, alg: 'ES256', use: 'sig' };
    },
  };
}

async function tool(dir: string, bundle: unknown, jwks: unknown): Promise<{ code: number; out: string }> {
  const p = path.join(dir, `proof-${Math.random().toString(36).slice(2)}.json`);
  const k = path.join(dir, `jwks-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(p, JSON.stringify(bundle));
  fs.writeFileSync(k, JSON.stringify(jwks));
  // A bare `node`, outside the repo: the tool must need nothing but itself.
  try {
    const { stdout } = await run(process.execPath, [TOOL, p, k], { cwd: os.tmpdir(), env: { PATH: process.env.PATH } });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

describe.each([
  ['EdDSA (local Ed25519 key)', (dir: string) => LocalEd25519Signer.fromFile(path.join(dir, 'key.pem'))],
  ['ES256 (KMS-style P-256 key)', () => es256Signer()],
])('tools/verify-proof.mjs with %s', (_label, makeSigner) => {
  let dir: string;
  let bundle: InclusionProofBundle;
  let jwks: { keys: JWK[] };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealpost-verify-proof-'));
    const store = SqliteAuditLogStore.open(path.join(dir, 'audit.sqlite'));
    const signer = await makeSigner(dir);
    const writer = new FencedLogWriter(store, 1);
    await writer.open();
    const entries = Array.from({ length: 13 }, () => sampleEntry());
    await writer.append(entries);
    writer.close();
    await signTreeHead({ store, signer, witness: new FileWitness(path.join(dir, 'w.jsonl')), logId: 'sealpost-audit' });
    bundle = await proveEntry({ store, entryId: entries[6]!.entryId });
    jwks = { keys: [await signer.publicJwk()] };
    await store.close();
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('accepts the proof and signature as produced', async () => {
    const r = await tool(dir, bundle, jwks);
    expect(r.out).toMatch(/^OK: entry .* is leaf 6 of log sealpost-audit at size 13/);
    expect(r.code).toBe(0);
  }, 20_000);

  it('rejects tampered proofs, entries, indices and heads', async () => {
    const flipped = bundle.proof.map((p, i) =>
      i === 1 ? `${p.slice(0, 10)}${p[10] === '0' ? '1' : '0'}${p.slice(11)}` : p,
    );
    const cases: [unknown, RegExp][] = [
      [{ ...bundle, proof: flipped }, /does not lead to the signed root/],
      [{ ...bundle, proof: bundle.proof.slice(0, -1) }, /too short/],
      [{ ...bundle, proof: [...bundle.proof, bundle.proof[0]] }, /too long|does not lead/],
      [{ ...bundle, leafIndex: 7 }, /does not lead to the signed root/],
      [{ ...bundle, entry: Buffer.from('forged').toString('base64') }, /leafHash is not/],
      [{ ...bundle, sth: { ...bundle.sth, treeSize: 14 } }, /differs from the signed payload/],
      [{ ...bundle, treeSize: 12 }, /proof treeSize differs/],
    ];
    for (const [tampered, why] of cases) {
      const r = await tool(dir, tampered, jwks);
      expect(r.out).toMatch(why);
      expect(r.code).toBe(1);
    }
  }, 60_000);

  it('rejects a wrong key: another key under the same kid, or no key with that kid', async () => {
    const other = await es256Signer();
    const otherEd = await LocalEd25519Signer.fromFile(path.join(dir, 'other.pem'));
    const impostor = { ...(jwks.keys[0]!.alg === 'ES256' ? await other.publicJwk() : await otherEd.publicJwk()) };
    const sameKid = await tool(dir, bundle, { keys: [{ ...impostor, kid: bundle.sth.kid }] });
    expect(sameKid.out).toMatch(/signature does not verify/);
    expect(sameKid.code).toBe(1);
    const unknown = await tool(dir, bundle, { keys: [impostor] });
    expect(unknown.out).toMatch(/no key with kid/);
    expect(unknown.code).toBe(1);
  }, 30_000);

  it('exits 2 on usage errors', async () => {
    const code = await run(process.execPath, [TOOL]).then(
      () => 0,
      (e: { code: number }) => e.code,
    );
    expect(code).toBe(2);
  });
});
