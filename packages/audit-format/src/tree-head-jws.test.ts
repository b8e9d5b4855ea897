import { generateKeyPairSync } from 'node:crypto';
import { CompactSign, type JWK, exportJWK } from 'jose';
import { type TreeHead, encodeTreeHeadPayload } from './tree-head';
import { type SignedTreeHead, TREE_HEAD_JWS_TYPE, TreeHeadSignatureError, verifyTreeHeadJws } from './tree-head-jws';

const head: TreeHead = {
  logId: 'sealpost-audit-test',
  treeSize: 3,
  rootHash: '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
  timestamp: 1_700_000_123_456,
};

type Alg = 'EdDSA' | 'ES256';

/** A key pair of `alg`: the private key signs in the tests, the public JWK is what verifiers hold. */
async function keyPair(alg: Alg, kid: string) {
  const { privateKey, publicKey } =
    alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { privateKey, jwk };
}

async function signHead(
  key: Awaited<ReturnType<typeof keyPair>>,
  payload: Uint8Array = encodeTreeHeadPayload(head),
  header: Record<string, string> = {},
): Promise<SignedTreeHead> {
  const alg = key.jwk.alg as Alg;
  const jws = await new CompactSign(payload)
    .setProtectedHeader({ alg, kid: key.jwk.kid!, typ: TREE_HEAD_JWS_TYPE, ...header })
    .sign(key.privateKey);
  return { ...head, kid: key.jwk.kid!, jws };
}

async function refusedWith(signed: SignedTreeHead, keys: readonly JWK[], code: TreeHeadSignatureError['code']) {
  const thrown = await verifyTreeHeadJws(signed, keys).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(thrown).toBeInstanceOf(TreeHeadSignatureError);
  expect((thrown as TreeHeadSignatureError).code).toBe(code);
}

function flipChar(s: string, at: number): string {
  return s.slice(0, at) + (s[at] === 'A' ? 'B' : 'A') + s.slice(at + 1);
}

describe.each(['EdDSA', 'ES256'] as const)('verifyTreeHeadJws with %s', (alg) => {
  it('returns the signed head when the JWS verifies and signs exactly its fields', async () => {
    const key = await keyPair(alg, `k-${alg}`);
    const other = await keyPair(alg, 'k-other');
    const signed = await signHead(key);
    await expect(verifyTreeHeadJws(signed, [other.jwk, key.jwk])).resolves.toEqual(head);
  });

  it('refuses other fields than the signed ones, a flipped signature and an unknown kid', async () => {
    const key = await keyPair(alg, `k-${alg}`);
    const signed = await signHead(key);
    await refusedWith({ ...signed, treeSize: 4 }, [key.jwk], 'STH_PAYLOAD_MISMATCH');
    await refusedWith({ ...signed, rootHash: '00'.repeat(32) }, [key.jwk], 'STH_PAYLOAD_MISMATCH');
    await refusedWith({ ...signed, timestamp: head.timestamp + 1 }, [key.jwk], 'STH_PAYLOAD_MISMATCH');
    await refusedWith(
      { ...signed, jws: flipChar(signed.jws, signed.jws.lastIndexOf('.') + 5) },
      [key.jwk],
      'STH_BAD_SIGNATURE',
    );
    await refusedWith({ ...signed, kid: 'other' }, [key.jwk], 'STH_UNKNOWN_KID');
  });

  it('refuses a signature by another key published under the same kid', async () => {
    const key = await keyPair(alg, 'k-shared');
    const impostor = await keyPair(alg, 'k-shared');
    await refusedWith(await signHead(impostor), [key.jwk], 'STH_BAD_SIGNATURE');
  });

  it('refuses another typ, and a header kid that is not the head kid', async () => {
    const key = await keyPair(alg, `k-${alg}`);
    await refusedWith(await signHead(key, undefined, { typ: 'JWT' }), [key.jwk], 'STH_BAD_SIGNATURE');
    const other = await keyPair(alg, 'k-header');
    // Signed by `key` but naming `k-header` in its header: the key is picked by the head's kid, the header must agree.
    await refusedWith(await signHead(key, undefined, { kid: 'k-header' }), [key.jwk, other.jwk], 'STH_BAD_SIGNATURE');
  });

  it('refuses a valid signature over a payload that is not the canonical tree head', async () => {
    const key = await keyPair(alg, `k-${alg}`);
    const spaced = Buffer.from(JSON.stringify(head, null, 1));
    await refusedWith(await signHead(key, spaced), [key.jwk], 'STH_PAYLOAD_MISMATCH');
  });
});

it('verifyTreeHeadJws refuses a JWS whose alg is not its key’s', async () => {
  const ed = await keyPair('EdDSA', 'k-1');
  const ec = await keyPair('ES256', 'k-1');
  // The Ed25519 signature is valid, but the verifier holds a P-256 key for the kid: ES256 only.
  await refusedWith(await signHead(ed), [ec.jwk], 'STH_BAD_SIGNATURE');
});
