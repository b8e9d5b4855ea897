/**
 * Pure domain core of the audit service: the stored-subtree scheme and log verification. Entries, Merkle hashing and
 * proofs, and tree heads are formats the log shares with its readers: @sealpost/audit-format.
 */
export * from './compact-tree';
export * from './verify-log';
