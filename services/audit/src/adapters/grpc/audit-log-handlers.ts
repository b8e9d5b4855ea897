/**
 * gRPC handlers of `sealpost.audit.v1.AuditLog`: signed tree heads, inclusion and consistency proofs, raw entry
 * ranges and tenant-scoped queries. Proofs come from the stored perfect subtrees (compact-tree.ts); nothing here
 * writes. Errors carry sizes, indices and field names only.
 */
import { assertTenantAccess } from '@sealpost/access';
import { AppError, unary, type CallContext } from '@sealpost/server';
import type { auditV1 } from '@sealpost/proto';
import { ProofError, decodeAuditEntry } from '@sealpost/audit-format';
import { CachedNodeReader, TreeError, consistencyProofFromStore, inclusionProofFromStore } from '../../domain';
import {
  AuditStoreError,
  MAX_PAGE_SIZE,
  type AuditLogStore,
  type StoredLeaf,
  type StoredTreeHead,
} from '../../ports/audit-log-store';

/** Most entries one GetEntries call returns; a larger range is cut to this many (clients page by `start`). */
export const MAX_ENTRIES_PER_CALL = 1000;
/** QueryEntries page size when the request names none. */
export const DEFAULT_QUERY_PAGE_SIZE = 100;

const outOfRange = (reason: string, message: string, options?: { cause?: unknown }): AppError =>
  new AppError('OUT_OF_RANGE', reason, message, options);

const invalid = (field: string, why: string): AppError =>
  new AppError('INVALID_ARGUMENT', 'INVALID_ARGUMENT', `${field}: ${why}`);

/** Parses a uint64 (ts-proto gives strings) into a safe integer; names the field when it is not one. */
function count(value: string | number | undefined, field: string): number {
  const n = typeof value === 'number' ? value : Number(value ?? '0');
  if (!Number.isSafeInteger(n) || n < 0) throw invalid(field, 'must be a non-negative integer below 2^53');
  return n;
}

function toProtoHead(head: StoredTreeHead): auditV1.SignedTreeHead {
  return {
    logId: head.logId,
    treeSize: String(head.treeSize),
    rootHash: Buffer.from(head.rootHash, 'hex'),
    timestamp: new Date(head.timestamp),
    jws: head.jws,
    kid: head.kid,
  };
}

function toProtoEntry(leaf: StoredLeaf): auditV1.Entry {
  const e = decodeAuditEntry(leaf.canonical);
  return {
    leafIndex: String(leaf.index),
    entryId: e.entryId,
    sourceService: e.sourceService,
    tenantId: e.tenantId,
    action: e.action,
    actor: {
      kind:
        e.actorKind === 'operator' ? { $case: 'operatorId', value: e.actorId } : { $case: 'service', value: e.actorId },
    },
    resourceIds: [...e.resourceIds],
    purposeCode: e.purposeCode,
    ticketRef: e.ticketRef,
    outcome: e.outcome,
    traceId: e.traceId,
    occurredAt: new Date(e.occurredAt),
    canonical: leaf.canonical,
  };
}

/** Maps domain and store refusals to AppErrors; anything else stays internal. */
function mapError(err: unknown): unknown {
  if (err instanceof AppError) return err;
  if (err instanceof ProofError) {
    return err.code === 'INDEX_OUT_OF_RANGE' || err.code === 'SIZE_OUT_OF_RANGE'
      ? outOfRange(err.code, err.message, { cause: err })
      : new AppError('INVALID_ARGUMENT', err.code, err.message, { cause: err });
  }
  if (err instanceof AuditStoreError && err.code === 'INVALID_QUERY') {
    return new AppError('INVALID_ARGUMENT', 'INVALID_QUERY', err.message, { cause: err });
  }
  if (err instanceof TreeError)
    return new AppError('INTERNAL', 'AUDIT_TREE_INCONSISTENT', 'internal error', { cause: err });
  return err;
}

function handler<Req, Res>(fn: (request: Req, ctx: CallContext) => Promise<Res>) {
  return unary<Req, Res>(async (request, ctx) => {
    try {
      return await fn(request, ctx);
    } catch (err) {
      throw mapError(err);
    }
  });
}

export interface AuditLogHandlerDeps {
  readonly store: AuditLogStore;
}

/** Read-side implementation of `sealpost.audit.v1.AuditLog` over an AuditLogStore. */
export function createAuditLogHandlers(deps: AuditLogHandlerDeps): auditV1.AuditLogServer {
  const { store } = deps;
  // Proofs read the upper tree levels from memory (stored nodes never change); only the low levels hit the store.
  const nodes = new CachedNodeReader(store);

  const latestHead = async (): Promise<StoredTreeHead> => {
    const head = await store.latestTreeHead();
    if (!head) throw new AppError('UNAVAILABLE', 'NO_SIGNED_TREE_HEAD', 'no tree head has been signed yet');
    return head;
  };

  /** Fails OUT_OF_RANGE unless `size` leaves are committed. Returns the committed size. */
  const requireCommitted = async (size: number, field: string): Promise<number> => {
    const { size: committed } = await store.readHead();
    if (size > committed) {
      throw outOfRange('TREE_SIZE_OUT_OF_RANGE', `${field} ${size} exceeds the log size ${committed}`);
    }
    return committed;
  };

  return {
    getSignedTreeHead: handler<auditV1.GetSignedTreeHeadRequest, auditV1.SignedTreeHead>(async (req) => {
      const size = count(req.treeSize, 'tree_size');
      if (size === 0) return toProtoHead(await latestHead());
      await requireCommitted(size, 'tree_size');
      const head = await store.treeHeadOfSize(size);
      if (!head) throw new AppError('NOT_FOUND', 'TREE_HEAD_NOT_FOUND', `no tree head was signed at size ${size}`);
      return toProtoHead(head);
    }),

    getInclusionProof: handler<auditV1.GetInclusionProofRequest, auditV1.InclusionProof>(async (req) => {
      const requested = count(req.treeSize, 'tree_size');
      let signed: StoredTreeHead | undefined;
      let size: number;
      if (requested === 0) {
        signed = await latestHead();
        size = signed.treeSize;
      } else {
        size = requested;
        signed = await store.treeHeadOfSize(size);
      }
      const committed = await requireCommitted(size, 'tree_size');

      let leaf: StoredLeaf | undefined;
      const which = req.entry;
      if (which?.$case === 'entryId') {
        if (which.value === '') throw invalid('entry_id', 'must not be empty');
        leaf = await store.findByEntryId(which.value);
        if (!leaf) throw new AppError('NOT_FOUND', 'ENTRY_NOT_FOUND', 'no committed entry has this id');
      } else if (which?.$case === 'leafIndex') {
        const index = count(which.value, 'leaf_index');
        if (index >= size) {
          throw outOfRange('LEAF_INDEX_OUT_OF_RANGE', `leaf_index ${index} is outside [0, ${size})`);
        }
        [leaf] = await store.getEntries(index, index + 1);
        if (!leaf) throw outOfRange('LEAF_INDEX_OUT_OF_RANGE', `leaf_index ${index} is not committed`);
      } else {
        throw invalid('entry', 'set entry_id or leaf_index');
      }
      if (leaf.index >= size) {
        throw outOfRange('ENTRY_AFTER_TREE_SIZE', `the entry is at index ${leaf.index}, outside [0, ${size})`);
      }
      const hashes = await inclusionProofFromStore(nodes, leaf.index, size, committed);
      return {
        leafIndex: String(leaf.index),
        treeSize: String(size),
        hashes,
        leafHash: leaf.leafHash,
        ...(signed ? { treeHead: toProtoHead(signed) } : {}),
      };
    }),

    getConsistencyProof: handler<auditV1.GetConsistencyProofRequest, auditV1.ConsistencyProof>(async (req) => {
      const first = count(req.firstSize, 'first_size');
      const second = count(req.secondSize, 'second_size');
      if (first > second) throw invalid('first_size', 'must not exceed second_size');
      const committed = await requireCommitted(second, 'second_size');
      const hashes = await consistencyProofFromStore(nodes, first, second, committed);
      return { firstSize: String(first), secondSize: String(second), hashes };
    }),

    getEntries: handler<auditV1.GetEntriesRequest, auditV1.GetEntriesResponse>(async (req) => {
      const start = count(req.start, 'start');
      const end = count(req.end, 'end');
      if (end <= start) throw invalid('end', 'must be greater than start');
      const { size } = await store.readHead();
      if (start >= size) throw outOfRange('START_OUT_OF_RANGE', `start ${start} is outside [0, ${size})`);
      const leaves = await store.getEntries(start, Math.min(end, start + MAX_ENTRIES_PER_CALL, size));
      return { entries: leaves.map(toProtoEntry) };
    }),

    queryEntries: handler<auditV1.QueryEntriesRequest, auditV1.QueryEntriesResponse>(async (req, ctx) => {
      // Always tenant-scoped: the interceptor checked tenant_id against the operator's token; checked again here
      // so a missing tenant can never widen a query to every tenant.
      if (req.tenantId === '') throw invalid('tenant_id', 'is required');
      assertTenantAccess(ctx.principal, req.tenantId);
      const pageSize = req.page?.pageSize || DEFAULT_QUERY_PAGE_SIZE;
      if (!Number.isSafeInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
        throw invalid('page.page_size', `must be 1–${MAX_PAGE_SIZE}`);
      }
      const fromMs = req.from?.getTime();
      const toMs = req.to?.getTime();
      if (fromMs !== undefined && (!Number.isSafeInteger(fromMs) || fromMs < 0)) throw invalid('from', 'is not valid');
      if (toMs !== undefined && (!Number.isSafeInteger(toMs) || toMs < 0)) throw invalid('to', 'is not valid');
      const page = await store.queryEntries({
        tenantId: req.tenantId,
        ...(req.actorId !== '' ? { actorId: req.actorId } : {}),
        ...(req.contactId !== '' ? { resourceId: req.contactId } : {}),
        ...(req.action !== '' ? { action: req.action } : {}),
        ...(fromMs !== undefined ? { fromMs } : {}),
        ...(toMs !== undefined ? { toMs } : {}),
        pageSize,
        ...(req.page?.pageToken ? { pageToken: req.page.pageToken } : {}),
      });
      return { entries: page.entries.map(toProtoEntry), nextPageToken: page.nextPageToken };
    }),
  };
}
