/** Test and benchmark helpers: valid entries and ready-made append batches. Not used by production code. */
import { type AuditEntry, encodeAuditEntry, leafHash } from '@sealpost/audit-format';
import { type Frontier, appendLeaves, emptyFrontier, frontierRoot } from '../src/domain';
import type { AppendBatch, NewLeaf } from '../src/ports/audit-log-store';

let counter = 0;

/** A valid entry; override any field. Ids only — no personal data. */
export function sampleEntry(overrides: Partial<AuditEntry> = {}): AuditEntry {
  counter += 1;
  return {
    entryId: `evt-${process.pid}-${counter}-${Math.random().toString(36).slice(2, 8)}`,
    sourceService: 'vault',
    tenantId: 't1',
    action: 'contact.reveal',
    actorKind: 'operator',
    actorId: 'op-1',
    resourceIds: ['ct-1'],
    purposeCode: 'support',
    ticketRef: 'SEC-12',
    outcome: 'granted',
    traceId: '',
    occurredAt: 1_700_000_000_000 + counter,
    ...overrides,
  };
}

/** The leaf record of an entry at `index`. */
export function newLeaf(entry: AuditEntry, index: number): NewLeaf {
  const canonical = encodeAuditEntry(entry);
  return {
    index,
    entryId: entry.entryId,
    canonical,
    leafHash: leafHash(canonical),
    tenantId: entry.tenantId,
    actorId: entry.actorId,
    action: entry.action,
    resourceIds: entry.resourceIds,
    occurredAt: entry.occurredAt,
  };
}

/** Builds the batch appending `entries` to `frontier`, and the frontier after it. */
export function buildBatch(
  frontier: Frontier,
  entries: readonly AuditEntry[],
  token: number,
): { batch: AppendBatch; frontier: Frontier } {
  const leaves = entries.map((e, i) => newLeaf(e, frontier.size + i));
  const { newNodes, newFrontier } = appendLeaves(
    frontier,
    leaves.map((l) => l.leafHash),
  );
  return {
    batch: { expectedSize: frontier.size, token, leaves, nodes: newNodes, newRoot: frontierRoot(newFrontier) },
    frontier: newFrontier,
  };
}

export { emptyFrontier };
