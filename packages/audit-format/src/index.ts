/**
 * The audit log's formats and their verification, with no I/O: what the audit service writes and what anyone
 * relying on the log (the contact vault's erasure receipts, the CLI, an outside verifier) must compute the same way.
 */
export * from './merkle';
export * from './canonical-entry';
export * from './tree-head';
export * from './tree-head-jws';
export * from './inclusion-proof-bundle';
export * from './audit-event';
