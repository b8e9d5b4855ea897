import { randomBytes } from 'node:crypto';
import { CreateAliasCommand, CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { describeWithPeer, loadPeers, tempDir } from '@sealpost/testkit';
import { openKmsReceiptSigner } from '../src/adapters/signing/kms-receipt-signer';
import { openLocalReceiptSigner, verifyReceipt } from '../src/adapters/signing/local-receipt-signer';
import { ERASURE_RECEIPT_TYP } from '../src/app/erase-contact';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

function tamper(jws: string): string {
  const [h, body, sig] = jws.split('.');
  const payload = JSON.parse(Buffer.from(body!, 'base64url').toString('utf8')) as Record<string, unknown>;
  return `${h}.${Buffer.from(JSON.stringify({ ...payload, contactId: 'c-other' })).toString('base64url')}.${sig}`;
}

describeWithPeer('kms', 'erasure receipts signed by a KMS ES256 key (local-kms)', () => {
  const kms = loadPeers().kms!;
  const admin = new KMSClient({ endpoint: kms.endpoint, region: kms.region, credentials });
  const at = { region: kms.region, endpoint: kms.endpoint, credentials };
  afterAll(() => admin.destroy());

  it('signs ES256 receipts that verify by kid next to Ed25519 ones; tampering fails', async () => {
    const key = await admin.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
    const alias = `alias/sealpost-test-vault-receipts-${randomBytes(4).toString('hex')}`;
    await admin.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.KeyMetadata!.KeyId! }));
    const signer = await openKmsReceiptSigner({ keyId: alias, ...at });
    expect(signer.alg).toBe('ES256');
    expect(signer.publicJwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', kid: alias });

    const receipt = await signer.sign({ tenantId: 't1', contactId: 'c1' }, ERASURE_RECEIPT_TYP);
    const header = JSON.parse(Buffer.from(receipt.split('.')[0]!, 'base64url').toString('utf8'));
    expect(header).toEqual({ alg: 'ES256', kid: alias, typ: ERASURE_RECEIPT_TYP });
    const local = await openLocalReceiptSigner({ dataDir: tempDir('vault-receipts').path, mode: 'embedded' });
    const keys = [local.publicJwk, signer.publicJwk];
    expect(verifyReceipt(receipt, keys)).toEqual({ tenantId: 't1', contactId: 'c1' });
    expect(verifyReceipt(await local.sign({ n: 1 }, ERASURE_RECEIPT_TYP), keys)).toEqual({ n: 1 });

    expect(() => verifyReceipt(tamper(receipt), keys)).toThrow(/does not verify/);
    expect(() => verifyReceipt(receipt, [local.publicJwk])).toThrow(/kid/);
    await expect(signer.sign({ n: 1 }, 'other+jws')).rejects.toThrow(/typ/);
  });

  it('refuses to start with a missing key or a key of the wrong spec, naming the setting', async () => {
    await expect(
      openKmsReceiptSigner({ keyId: `alias/sealpost-absent-${randomBytes(4).toString('hex')}`, ...at }),
    ).rejects.toMatchObject({
      code: 'RECEIPT_SIGNER_NOT_CONFIGURED',
      message: expect.stringContaining('SEALPOST_VAULT_RECEIPT_SIGNING_KEY_ID'),
    });
    const aes = await admin.send(new CreateKeyCommand({ KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' }));
    await expect(openKmsReceiptSigner({ keyId: aes.KeyMetadata!.KeyId!, ...at })).rejects.toMatchObject({
      code: 'RECEIPT_SIGNER_NOT_CONFIGURED',
      message: expect.stringContaining('SEALPOST_VAULT_RECEIPT_SIGNING_KEY_ID'),
    });
  });
});
