import type { JwsSigner } from '@sealpost/crypto';

/** Signs tree-head payloads as compact JWS (typ TREE_HEAD_JWS_TYPE): the @sealpost/crypto JwsSigner port. */
export type TreeHeadSigner = JwsSigner;

/** JWS `typ` of signed tree heads. */
export const TREE_HEAD_JWS_TYPE = 'sealpost-sth+jws';
