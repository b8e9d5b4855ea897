import type { BlindIndexFieldKind } from '@sealpost/crypto';

/** One erasure, recorded with ids only so it can be re-applied after a restore of an older key store. */
export interface ErasureLedgerEntry {
  readonly tenantId: string;
  readonly contactId: string;
  readonly erasureId: string;
  readonly erasedAt: Date;
}

/** A do-not-contact tombstone: HMAC under the tenant's (never rotated) suppression key; pseudonymous data kept. */
export interface SuppressionTombstone {
  readonly tenantId: string;
  readonly fieldKind: BlindIndexFieldKind;
  readonly normVersion: number;
  /** base64url HMAC-SHA-256; never the value. */
  readonly value: string;
  readonly erasureId: string;
  readonly createdAt: Date;
}

/** The erasure ledger and suppression tombstones, each as their own rows/documents. */
export interface ErasureRepository {
  /** Records an erasure (idempotent on erasure id). */
  appendLedger(entry: ErasureLedgerEntry): Promise<void>;
  /** Ledger entries in erasure-id order after `after` (all tenants). */
  ledger(options: { after?: string; limit: number }): Promise<ErasureLedgerEntry[]>;
  /** Stores a suppression tombstone (idempotent on tenant, field kind, norm version and value). */
  putSuppression(tombstone: SuppressionTombstone): Promise<void>;
  isSuppressed(tenantId: string, fieldKind: BlindIndexFieldKind, normVersion: number, value: string): Promise<boolean>;
}
