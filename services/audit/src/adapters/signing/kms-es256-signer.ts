import type { KMSClient } from '@aws-sdk/client-kms';
import { KmsEs256JwsSigner } from '@sealpost/crypto';
import { TREE_HEAD_JWS_TYPE } from '../../ports/tree-head-signer';

/** The @sealpost/crypto KMS ES256 signer fixed to tree heads (typ TREE_HEAD_JWS_TYPE); `kid` defaults to the key id. */
export class KmsEs256Signer extends KmsEs256JwsSigner {
  constructor(client: KMSClient, keyId: string, kid: string = keyId) {
    super(client, keyId, { typ: TREE_HEAD_JWS_TYPE, kid });
  }
}
