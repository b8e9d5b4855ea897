import { jwsSigningInput as signingInput } from '@sealpost/crypto';
import { TREE_HEAD_JWS_TYPE } from '../../ports/tree-head-signer';

export { derToJoseSignature } from '@sealpost/crypto';

/** The tree-head compact-JWS signing input (typ TREE_HEAD_JWS_TYPE); the encoding lives in @sealpost/crypto. */
export function jwsSigningInput(alg: 'EdDSA' | 'ES256', kid: string, payload: Uint8Array): string {
  return signingInput({ alg, kid, typ: TREE_HEAD_JWS_TYPE }, payload);
}
