/** Pure domain core of the audit service: Merkle hashing and proofs, stored-subtree scheme, entries, tree heads, log verification. */
export * from './merkle';
export * from './compact-tree';
export * from './canonical-entry';
export * from './tree-head';
export * from './verify-log';
