import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { describeWithPeer, loadPeers } from '@sealpost/testkit';
import { KmsEs256JwsSigner, verifyCompactJws } from '../src';

const TYP = 'test-thing+jws';

describeWithPeer('kms', 'KmsEs256JwsSigner against local-kms', () => {
  const kms = loadPeers().kms!;
  const client = new KMSClient({
    endpoint: kms.endpoint,
    region: kms.region,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  afterAll(() => client.destroy());

  it('signs ES256 JWS with a KMS-held P-256 key that verify with its public JWK; tampering fails', async () => {
    const key = await client.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
    const signer = new KmsEs256JwsSigner(client, key.KeyMetadata!.KeyId!, { typ: TYP });
    const jwk = await signer.publicJwk();
    expect(jwk).toMatchObject({ kty: 'EC', crv: 'P-256', kid: key.KeyMetadata!.KeyId!, alg: 'ES256' });
    const jws = await signer.sign(Buffer.from('payload'));
    expect(verifyCompactJws(jws, [jwk], { typ: TYP }).payload.toString()).toBe('payload');
    const [h, , sig] = jws.split('.');
    const forged = `${h}.${Buffer.from('payloaD').toString('base64url')}.${sig}`;
    expect(() => verifyCompactJws(forged, [jwk], { typ: TYP })).toThrow(/verify/);
  });

  it('refuses a key that is not ECC_NIST_P256', async () => {
    const key = await client.send(new CreateKeyCommand({ KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' }));
    const signer = new KmsEs256JwsSigner(client, key.KeyMetadata!.KeyId!, { typ: TYP, kid: 'k1' });
    await expect(signer.publicJwk()).rejects.toThrow();
  });
});
