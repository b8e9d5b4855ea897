import type { JwsSigner } from '@sealpost/crypto';

/** Signs tree-head payloads as compact JWS (typ TREE_HEAD_JWS_TYPE): the @sealpost/crypto JwsSigner port. */
export type TreeHeadSigner = JwsSigner;

/** JWS `typ` of signed tree heads (defined beside their verification). */
export { TREE_HEAD_JWS_TYPE } from '@sealpost/audit-format';
