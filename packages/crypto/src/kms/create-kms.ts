import { DevModeRefusedError } from '../errors';
import { AwsKms, type AwsKmsOptions } from './aws-kms';
import type { KeyManagementService } from './key-management-service';
import { LocalKeyring } from './local-keyring';
import { MeteredKms } from './metered-kms';

/** Which KMS to use (the parsed value of SEALPOST_KMS and its companion settings). */
export type KmsSettings = ({ kind: 'aws' } & AwsKmsOptions) | { kind: 'local'; keyringPath: string };

/**
 * Builds the configured KMS adapter, wrapped in `MeteredKms` (calls counted by operation and outcome). Throws `DevModeRefusedError` (DEV_MODE_REFUSED) when the local
 * keyring is asked for while `mode` is 'production'.
 */
export async function createKeyManagementService(options: {
  mode: string;
  kms: KmsSettings;
}): Promise<KeyManagementService> {
  const { mode, kms } = options;
  if (kms.kind === 'local') {
    if (mode === 'production') {
      throw new DevModeRefusedError(
        'SEALPOST_KMS',
        'SEALPOST_KMS=local (the local keyring) is a development stand-in and is refused in production mode; ' +
          'set SEALPOST_KMS=aws with a KMS key per tenant',
      );
    }
    return new MeteredKms(await LocalKeyring.open(kms.keyringPath));
  }
  const { kind: _kind, ...aws } = kms;
  return new MeteredKms(new AwsKms(aws));
}
