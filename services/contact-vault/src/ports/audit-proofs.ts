/**
 * A signed tree head of the audit log, with its fields exactly as its JWS signs them (so a receipt can carry both
 * and a verifier compare them byte for byte).
 */
export interface AuditTreeHead {
  readonly logId: string;
  readonly treeSize: number;
  /** Lowercase hex of the 32-byte Merkle root, as in the signed payload. */
  readonly rootHash: string;
  /** Milliseconds since the Unix epoch, as in the signed payload. */
  readonly timestamp: number;
  /** Compact JWS (typ `sealpost-sth+jws`) over `{logId, rootHash, timestamp, treeSize}`. */
  readonly jws: string;
  readonly kid: string;
}

/** An audit entry's place in the log and its RFC 9162 inclusion proof in a signed tree head. */
export interface AuditInclusion {
  readonly entryId: string;
  readonly leafIndex: number;
  /** SHA-256(0x00 ‖ canonical entry bytes), as the audit log stores it. */
  readonly leafHash: Uint8Array;
  /** Audit path, leaf level first. */
  readonly hashes: readonly Uint8Array[];
  /** The head the proof leads to; its `treeSize` is the proof's tree size. */
  readonly treeHead: AuditTreeHead;
}

export interface AwaitInclusionOptions {
  /**
   * Called before each wait while the entry is not yet appended or signed (or the audit service not reachable),
   * with how long the wait has lasted and its bound, so a long-running operation can report progress.
   */
  readonly onWaiting?: (waitedMs: number, boundMs: number) => Promise<void> | void;
}

/** Where the vault gets the signed tree head and inclusion proof that an erasure receipt cites. */
export interface AuditProofs {
  /**
   * Waits until the audit entry `entryId` (the audit event id) is appended and covered by a signed tree head, and
   * returns that head with the entry's inclusion proof. Keeps retrying while the entry is unknown, not yet signed or
   * the audit service unreachable, up to a bounded total wait; then, or at once when the audit service refuses the
   * vault, throws VaultError AUDIT_UNAVAILABLE.
   */
  awaitInclusion(entryId: string, options?: AwaitInclusionOptions): Promise<AuditInclusion>;
}
