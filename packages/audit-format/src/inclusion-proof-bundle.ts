/**
 * The inclusion-proof file an outside party checks with the audit's public key alone
 * (services/audit/tools/verify-proof.mjs): written by `audit prove` and by `contacts verify-receipt
 * --export-audit-proof`.
 */
import type { SignedTreeHead } from './tree-head-jws';

/** Identifies this proof format; bump on any change of meaning. */
export const INCLUSION_PROOF_FORMAT = 'sealpost-audit-inclusion-proof/1';

/** An inclusion proof an outside party can check with the public key alone (see tools/verify-proof.mjs). */
export interface InclusionProofBundle {
  readonly format: typeof INCLUSION_PROOF_FORMAT;
  readonly entryId: string;
  readonly leafIndex: number;
  /** Canonical entry bytes, base64: the leaf hash is SHA-256(0x00 ‖ these bytes). */
  readonly entry: string;
  /** Lowercase hex. */
  readonly leafHash: string;
  readonly treeSize: number;
  /** Audit path, leaf level first, lowercase hex (RFC 9162 §2.1.3). */
  readonly proof: readonly string[];
  /** The signed tree head the proof leads to; `jws` signs {logId, rootHash, timestamp, treeSize}. */
  readonly sth: SignedTreeHead;
}
