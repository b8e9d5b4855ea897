import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DevModeRefusedError, KeyringError, KmsAccessDeniedError } from '../errors';
import { AwsKms } from './aws-kms';
import { createKeyManagementService } from './create-kms';
import { canonicalContext } from './key-management-service';
import { LocalKeyring } from './local-keyring';
import { MeteredKms } from './metered-kms';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sealpost-keyring-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const context = { tenant: 'tenant-a', purpose: 'kek', version: '1' };

describe('LocalKeyring', () => {
  it('creates the keyring file on first run with mode 0600', async () => {
    const file = path.join(dir, 'nested', 'keyring.json');
    await LocalKeyring.open(file);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(path.dirname(file))).mode & 0o777).toBe(0o700);
    const keyring = await LocalKeyring.open(file);
    await keyring.encrypt('tenant-a', Buffer.from('secret'), context);
    // Still 0600 after the atomic replace that added a key.
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const parsed = JSON.parse(await readFile(file, 'utf8'));
    expect(Buffer.from(parsed.keys['tenant-a'].key, 'base64')).toHaveLength(32);
  });

  it('wraps and unwraps, and keeps keys across reopen', async () => {
    const file = path.join(dir, 'keyring.json');
    const first = await LocalKeyring.open(file);
    const blob = await first.encrypt('tenant-a', Buffer.from('0123456789abcdef'), context);
    expect(Buffer.from(blob).includes(Buffer.from('0123456789abcdef'))).toBe(false);
    const reopened = await LocalKeyring.open(file);
    expect(Buffer.from(await reopened.decrypt('tenant-a', blob, context)).toString()).toBe('0123456789abcdef');
  });

  it('gives each key id its own master key', async () => {
    const keyring = await LocalKeyring.open(path.join(dir, 'keyring.json'));
    const blob = await keyring.encrypt('tenant-a', Buffer.from('x'), context);
    await keyring.encrypt('tenant-b', Buffer.from('y'), context);
    await expect(keyring.decrypt('tenant-b', blob, context)).rejects.toBeInstanceOf(KmsAccessDeniedError);
    await expect(keyring.decrypt('tenant-unknown', blob, context)).rejects.toMatchObject({
      code: 'KMS_DECRYPT_REFUSED',
    });
  });

  it('binds the encryption context as AAD (canonical, order-independent)', async () => {
    const keyring = await LocalKeyring.open(path.join(dir, 'keyring.json'));
    const blob = await keyring.encrypt('tenant-a', Buffer.from('x'), context);
    const reordered = { version: '1', purpose: 'kek', tenant: 'tenant-a' };
    expect(canonicalContext(reordered)).toBe('{"purpose":"kek","tenant":"tenant-a","version":"1"}');
    expect(Buffer.from(await keyring.decrypt('tenant-a', blob, reordered)).toString()).toBe('x');
    for (const wrong of [
      { ...context, version: '2' },
      { ...context, tenant: 'tenant-b' },
      { ...context, purpose: 'index' },
      { tenant: 'tenant-a', purpose: 'kek' },
    ]) {
      await expect(keyring.decrypt('tenant-a', blob, wrong)).rejects.toMatchObject({ code: 'KMS_DECRYPT_REFUSED' });
    }
  });

  it('refuses any altered byte of a blob', async () => {
    const keyring = await LocalKeyring.open(path.join(dir, 'keyring.json'));
    const blob = Buffer.from(await keyring.encrypt('tenant-a', Buffer.alloc(32, 7), context));
    for (let i = 0; i < blob.length; i += 1) {
      const altered = Buffer.from(blob);
      altered[i] = (altered[i] ?? 0) ^ 0x01;
      await expect(keyring.decrypt('tenant-a', altered, context)).rejects.toBeInstanceOf(KmsAccessDeniedError);
    }
  });

  it('refuses personal data in the encryption context', async () => {
    const keyring = await LocalKeyring.open(path.join(dir, 'keyring.json'));
    await expect(keyring.encrypt('tenant-a', Buffer.from('x'), { email: 'jane@example.com' })).rejects.toThrow(
      TypeError,
    );
  });

  it('refuses a keyring file other users can read', async () => {
    const file = path.join(dir, 'keyring.json');
    await LocalKeyring.open(file);
    await chmod(file, 0o644);
    await expect(LocalKeyring.open(file)).rejects.toBeInstanceOf(KeyringError);
    await chmod(file, 0o600);
    await writeFile(file, '{"format":"other"}');
    await expect(LocalKeyring.open(file)).rejects.toThrow('unknown format');
  });
});

describe('createKeyManagementService', () => {
  it('refuses the local keyring in production mode, naming SEALPOST_KMS', async () => {
    const file = path.join(dir, 'keyring.json');
    const attempt = createKeyManagementService({ mode: 'production', kms: { kind: 'local', keyringPath: file } });
    await expect(attempt).rejects.toBeInstanceOf(DevModeRefusedError);
    await expect(attempt).rejects.toMatchObject({ code: 'DEV_MODE_REFUSED', setting: 'SEALPOST_KMS' });
    await expect(attempt).rejects.toThrow(/SEALPOST_KMS/);
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('gives the local keyring outside production and AwsKms when asked', async () => {
    const local = await createKeyManagementService({
      mode: 'development',
      kms: { kind: 'local', keyringPath: path.join(dir, 'k.json') },
    });
    // Both come wrapped in the metrics decorator.
    expect(local).toBeInstanceOf(MeteredKms);
    expect((local as MeteredKms).inner).toBeInstanceOf(LocalKeyring);
    const aws = await createKeyManagementService({ mode: 'production', kms: { kind: 'aws', region: 'eu-west-1' } });
    expect((aws as MeteredKms).inner).toBeInstanceOf(AwsKms);
    ((aws as MeteredKms).inner as AwsKms).destroy();
  });
});
