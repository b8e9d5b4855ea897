#!/usr/bin/env node
/**
 * Standalone verifier for a Sealpost audit inclusion proof. Plain Node (>= 18), no dependencies, nothing from
 * the Sealpost repository: an outside party needs only this file, the proof JSON (`sealpost audit prove`) and the
 * published public keys (`sealpost audit public-key`, a JWKS).
 *
 *   node verify-proof.mjs PROOF.json JWKS.json
 *
 * Exit code 0: OK. 1: the proof or the signature does not verify (the reason is printed). 2: usage / unreadable input.
 *
 * Algorithm
 * ---------
 * 1. Signed tree head (STH). `sth.jws` is a compact JWS `B64(header) "." B64(payload) "." B64(signature)`
 *    (base64url, no padding). The header must be {"alg": "EdDSA" | "ES256", "kid": <key id>, "typ":
 *    "sealpost-sth+jws"}; the key is the JWKS entry with that kid (its alg, if present, must match).
 *    The signature covers the ASCII bytes of `B64(header) "." B64(payload)`:
 *      EdDSA: Ed25519 (RFC 8032) over those bytes.
 *      ES256: ECDSA P-256 with SHA-256; the signature is JOSE's raw r‖s (32 + 32 bytes, RFC 7518 §3.4).
 * 2. The payload must be exactly the canonical JSON
 *      {"logId":"<id>","rootHash":"<64 hex>","timestamp":<ms>,"treeSize":<n>}
 *    (keys in this order, no spaces) and its fields must equal `sth.logId`, `sth.rootHash`, `sth.treeSize`,
 *    `sth.timestamp` and the proof's `treeSize`.
 * 3. Leaf: leafHash = SHA-256(0x00 ‖ entry), `entry` being the base64 canonical entry bytes; it must equal
 *    `leafHash`.
 * 4. Inclusion (RFC 9162 §2.1.3.2), index = leafIndex, size = treeSize, proof = audit path (leaf level first):
 *      if index >= size: fail
 *      fn = index, sn = size - 1, r = leafHash
 *      for each p in proof:
 *        if sn == 0: fail
 *        if fn is odd or fn == sn:
 *          r = SHA-256(0x01 ‖ p ‖ r)
 *          if fn is even: repeat { fn >>= 1; sn >>= 1 } until fn is odd or fn == 0
 *        else:
 *          r = SHA-256(0x01 ‖ r ‖ p)
 *        fn >>= 1; sn >>= 1
 *      OK iff sn == 0 and r == rootHash.
 */
import { Buffer } from 'node:buffer';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import process from 'node:process';

const TYP = 'sealpost-sth+jws';
const HEX64 = /^[0-9a-f]{64}$/;

class Failed extends Error {}
const fail = (why) => {
  throw new Failed(why);
};

function b64url(s, what) {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s)) fail(`${what} is not base64url`);
  return Buffer.from(s, 'base64url');
}

const sha256 = (...parts) => createHash('sha256').update(Buffer.concat(parts)).digest();

function verifySth(sth, jwks) {
  const parts = String(sth?.jws ?? '').split('.');
  if (parts.length !== 3) fail('sth.jws is not a compact JWS');
  let header;
  try {
    header = JSON.parse(b64url(parts[0], 'JWS header').toString('utf8'));
  } catch (e) {
    if (e instanceof Failed) throw e;
    fail('JWS header is not JSON');
  }
  if (header.typ !== TYP) fail(`JWS typ is not ${TYP}`);
  if (header.alg !== 'EdDSA' && header.alg !== 'ES256') fail('JWS alg is neither EdDSA nor ES256');
  const jwk = (jwks.keys ?? []).find((k) => k.kid === header.kid);
  if (!jwk) fail(`no key with kid ${header.kid} in the JWKS`);
  if (jwk.alg !== undefined && jwk.alg !== header.alg) fail('the key is not for the JWS alg');
  // Never use private material, even if a JWKS carries it.
  const publicJwk = Object.fromEntries(
    Object.entries(jwk).filter(([k]) => !['d', 'p', 'q', 'dp', 'dq', 'qi'].includes(k)),
  );
  let key;
  try {
    key = createPublicKey({ key: publicJwk, format: 'jwk' });
  } catch {
    fail('the JWKS key cannot be imported');
  }
  const input = Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii');
  const sig = b64url(parts[2], 'JWS signature');
  let good = false;
  if (header.alg === 'EdDSA') {
    if (key.asymmetricKeyType !== 'ed25519') fail('EdDSA needs an Ed25519 key');
    good = verify(null, input, key, sig);
  } else {
    if (key.asymmetricKeyType !== 'ec' || jwk.crv !== 'P-256') fail('ES256 needs a P-256 key');
    if (sig.length !== 64) fail('ES256 signature is not 64 bytes (r‖s)');
    good = verify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, sig);
  }
  if (!good) fail('STH signature does not verify with the published key');
  const payload = b64url(parts[1], 'JWS payload').toString('utf8');
  let head;
  try {
    head = JSON.parse(payload);
  } catch {
    fail('signed payload is not JSON');
  }
  const canonical =
    `{"logId":${JSON.stringify(head.logId)},"rootHash":${JSON.stringify(head.rootHash)},` +
    `"timestamp":${JSON.stringify(head.timestamp)},"treeSize":${JSON.stringify(head.treeSize)}}`;
  if (payload !== canonical || !HEX64.test(head.rootHash) || !Number.isSafeInteger(head.treeSize)) {
    fail('signed payload is not a canonical tree head');
  }
  for (const f of ['logId', 'rootHash', 'timestamp', 'treeSize']) {
    if (sth[f] !== head[f]) fail(`sth.${f} differs from the signed payload`);
  }
  return { head, kid: header.kid, alg: header.alg };
}

function rootFromInclusion(leaf, index, size, proof) {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) {
    fail('leafIndex is outside the tree');
  }
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) fail('inclusion proof is too long');
    if (fn % 2 === 1 || fn === sn) {
      r = sha256(Buffer.from([1]), p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      r = sha256(Buffer.from([1]), r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) fail('inclusion proof is too short');
  return r;
}

function check(bundle, jwks) {
  if (bundle?.format !== 'sealpost-audit-inclusion-proof/1') fail('not a sealpost-audit-inclusion-proof/1 document');
  const { head, kid, alg } = verifySth(bundle.sth, jwks);
  if (bundle.treeSize !== head.treeSize) fail('proof treeSize differs from the signed head');
  const entry = Buffer.from(String(bundle.entry ?? ''), 'base64');
  const leaf = sha256(Buffer.from([0]), entry);
  if (!HEX64.test(bundle.leafHash ?? '') || leaf.toString('hex') !== bundle.leafHash) {
    fail('leafHash is not SHA-256(0x00 ‖ entry)');
  }
  if (!Array.isArray(bundle.proof) || bundle.proof.some((p) => !HEX64.test(p))) fail('proof is not a list of hashes');
  const root = rootFromInclusion(
    leaf,
    bundle.leafIndex,
    bundle.treeSize,
    bundle.proof.map((p) => Buffer.from(p, 'hex')),
  );
  if (root.toString('hex') !== head.rootHash) fail('inclusion proof does not lead to the signed root');
  return { head, kid, alg };
}

function main(argv) {
  if (argv.length !== 2 || argv.includes('--help')) {
    process.stderr.write('usage: node verify-proof.mjs PROOF.json JWKS.json\n');
    return 2;
  }
  let bundle;
  let jwks;
  try {
    bundle = JSON.parse(readFileSync(argv[0], 'utf8'));
    jwks = JSON.parse(readFileSync(argv[1], 'utf8'));
  } catch (e) {
    process.stderr.write(`cannot read input: ${e.message}\n`);
    return 2;
  }
  try {
    const { head, kid, alg } = check(bundle, jwks);
    process.stdout.write(
      `OK: entry ${bundle.entryId} is leaf ${bundle.leafIndex} of log ${head.logId} at size ${head.treeSize}, ` +
        `root ${head.rootHash}, signed ${new Date(head.timestamp).toISOString()} by ${alg} key ${kid}\n`,
    );
    return 0;
  } catch (e) {
    if (!(e instanceof Failed)) throw e;
    process.stdout.write(`FAILED: ${e.message}\n`);
    return 1;
  }
}

process.exitCode = main(process.argv.slice(2));
