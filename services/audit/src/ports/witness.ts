import type { StoredTreeHead } from './audit-log-store';

/** A sink outside the database that keeps every signed tree head (file, WORM bucket, HTTP endpoint). */
export interface TreeHeadWitness {
  /** What kind of sink this is (`file`, `worm-bucket`, `http`): the witness label of the tree-head metric. */
  readonly kind: string;
  /** Durably records the head; throws if it could not. */
  record(head: StoredTreeHead): Promise<void>;
  /** The newest recorded head, if the sink can be read back (used as the pinned head by verify). */
  latest?(): Promise<StoredTreeHead | undefined>;
}
