/** A long-running operation (erasure, key rotation) as the API reports it. */
export interface OperationRecord {
  readonly operationId: string;
  readonly kind: 'erase-contact' | 'rotate-tenant-key';
  readonly tenantId: string;
  readonly done: boolean;
  /** In [0, 1]. */
  readonly progress: number;
  /** JWS receipt (erasure) or a JSON summary (rotation) when done with success. */
  readonly result: string;
  /** Stable reason code when done with failure. */
  readonly errorReason: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** Where operations are kept so GetOperation can answer after the call that started them returned. */
export interface OperationRepository {
  /** Inserts, or replaces a record with the same id. */
  save(op: OperationRecord): Promise<void>;
  get(operationId: string): Promise<OperationRecord | undefined>;
}
