import { newEventId } from '@sealpost/bus';
import { NORM_VERSION, type BlindIndex, type BlindIndexKeys, type NormalizationPolicy } from '@sealpost/crypto';
import { newLeaseHolderId, type LeaseStore } from '@sealpost/storage';
import {
  VaultError,
  assertTenantId,
  fieldKindsOf,
  fromOpened,
  indexesOf,
  invalidField,
  normalizeFields,
  sameFields,
  toSealable,
  type ContactFields,
} from '../domain';
import type { AuditPublisher, VaultAuditEvent } from '../ports/audit-publisher';
import type { StoredContact } from '../ports/contact-repository';
import type { KeyInventory } from '../ports/key-inventory';
import type { OperationRecord, OperationRepository, RotationState } from '../ports/operation-repository';
import { contactUpsertedEvent } from './contact-events';
import { tenantKeyRetiredEvent, tenantKeyRotatedEvent } from './key-events';
import { holdLease, type HeldLease } from './operation-lease';
import type { StatedPurpose } from './reveal-contact';
import { indexKeyOf, sameIndex, type VaultDeps } from './vault-deps';

/** Audit action of a rotation; subject token `key_rotate`. */
export const ROTATE_AUDIT_ACTION = 'key.rotate';
const PAGE = 200;
/** Verification passes before a rotation gives up waiting for writers that still use the old version. */
const MAX_PASSES = 20;
/** Contact ids a re-index lists in its result per kind of finding; the counts are always complete. */
const MAX_LISTED_IDS = 1000;
/** An operation not updated for this long, while another run holds its lease, is reported as it stands. */
const FOLLOW_STALE_MS = 120_000;
/** A claim whose contact never listed it (its writer crashed) is taken over after this long (as in upserts). */
const DEFAULT_CLAIM_GRACE_MS = 30_000;

export type RotateDeps = VaultDeps & {
  readonly audit: AuditPublisher;
  readonly inventory: KeyInventory;
  readonly operations: OperationRepository;
  /** Shared by every replica: one rotation per tenant key at a time. */
  readonly leases: LeaseStore;
};

export interface RotateTenantKeyInput {
  readonly tenantId: string;
  readonly keyKind: 'kek' | 'index';
  readonly actor: VaultAuditEvent['actor'];
  readonly purpose?: StatedPurpose;
}

/** A rotation's operation id: one per tenant key version, so a later call finds an unfinished one and resumes it. */
export function rotationOperationId(tenantId: string, keyKind: 'kek' | 'index', version: number): string {
  return `op_rot_${keyKind}_v${version}_${tenantId}`;
}

const rotationLeaseName = (tenantId: string, keyKind: 'kek' | 'index'): string =>
  `rotate-tenant-key:${tenantId}:${keyKind}`;

const succeeded = (op: OperationRecord): boolean => op.done && op.errorReason === '';

const reasonOf = (err: unknown): string =>
  err instanceof VaultError ? err.code : String((err as { code?: unknown })?.code ?? 'INTERNAL');

/**
 * Rotates a tenant key as a long-running operation, one rotation per tenant key at a time (a lease shared by every
 * replica; a call while one runs answers with that operation).
 *
 * Fail closed, in this order: the `key.rotate` audit event is fixed with the operation and must be acknowledged
 * before anything changes (else AUDIT_UNAVAILABLE, and nothing was created); then the new version is created and its
 * `vault.tenant_key.rotated` event queued with the operation (outbox); then the background work runs. `kek`: every
 * data key is rewrapped (progress = rewrapped / data keys) and older versions are retired once none uses them.
 * `index`: a re-index job re-normalises every contact under the tenant's current rules and writes entries of the new
 * version beside the old (lookups consult both meanwhile), then retires the old version and removes its entries.
 * Finishing queues `vault.tenant_key.retired`.
 *
 * A rotation that stopped part-way (its audit event acknowledged, or its version created, but not finished: a
 * failure, a crash, a lost lease) is resumed by the next call for that tenant key instead of creating another
 * version. Throws VaultError INVALID_ARGUMENT, AUDIT_UNAVAILABLE, CONCURRENT_UPDATE, FAILED_PRECONDITION; KMS
 * errors pass through.
 */
export async function startRotateTenantKey(
  deps: RotateDeps,
  input: RotateTenantKeyInput,
): Promise<{ operation: OperationRecord; done: Promise<OperationRecord> }> {
  assertTenantId(input.tenantId);
  if (input.keyKind !== 'kek' && input.keyKind !== 'index') throw invalidField('key_kind', "must be 'kek' or 'index'");
  const { tenantId, keyKind } = input;
  const calledAt = (deps.now ?? (() => new Date()))().getTime();
  const lease = await holdLease(
    deps.leases,
    rotationLeaseName(tenantId, keyKind),
    newLeaseHolderId('contact-vault-rotation'),
  );
  if (!lease) {
    // The holder saves its operation right after taking the lease: give it a moment to appear.
    for (let attempt = 0; attempt < 20; attempt++) {
      const running = await rotationHoldingLease(deps, tenantId, keyKind, calledAt);
      if (running) return { operation: running, done: followOperation(deps.operations, running.operationId) };
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new VaultError('CONCURRENT_UPDATE', 'another rotation of this key is starting; retry');
  }
  let operation: OperationRecord;
  try {
    operation = await prepareRotation(deps, input);
  } catch (err) {
    await lease.release();
    throw err;
  }
  const done = runRotation(deps, operation, lease).finally(() => lease.release());
  return { operation, done };
}

/**
 * The rotation a call must resume, if any: one whose version exists but that did not finish, or whose audit event
 * was acknowledged but whose version was not created yet. One whose audit event was never acknowledged changed
 * nothing and is not resumed: the new call records its own event.
 */
async function unfinishedRotation(
  deps: RotateDeps,
  tenantId: string,
  keyKind: 'kek' | 'index',
): Promise<OperationRecord | undefined> {
  const latest = await deps.inventory.latestVersion(tenantId, keyKind);
  for (const version of [latest + 1, latest]) {
    if (version < 1) continue;
    const op = await deps.operations.get(rotationOperationId(tenantId, keyKind, version));
    if (!op?.rotation || succeeded(op) || op.rotation.stage === 'audit') continue;
    return op;
  }
  return undefined;
}

/**
 * The rotation of the run that held the lease when a call found it taken: unfinished, or finished since the call
 * (an older, finished rotation is not it).
 */
async function rotationHoldingLease(
  deps: RotateDeps,
  tenantId: string,
  keyKind: 'kek' | 'index',
  calledAt: number,
): Promise<OperationRecord | undefined> {
  const latest = await deps.inventory.latestVersion(tenantId, keyKind);
  for (const version of [latest + 1, latest]) {
    if (version < 1) continue;
    const op = await deps.operations.get(rotationOperationId(tenantId, keyKind, version));
    if (op?.rotation && (!op.done || op.updatedAt.getTime() >= calledAt)) return op;
  }
  return undefined;
}

/** Under the lease: resumes or starts the rotation up to a created version with its event queued. */
async function prepareRotation(deps: RotateDeps, input: RotateTenantKeyInput): Promise<OperationRecord> {
  const now = deps.now ?? (() => new Date());
  const { tenantId, keyKind } = input;
  const resumed = await unfinishedRotation(deps, tenantId, keyKind);
  let op: OperationRecord;
  if (resumed) {
    op = { ...resumed, done: false, errorReason: '', updatedAt: now() };
  } else {
    const version = (await deps.inventory.latestVersion(tenantId, keyKind)) + 1;
    const at = now();
    op = {
      operationId: rotationOperationId(tenantId, keyKind, version),
      kind: 'rotate-tenant-key',
      tenantId,
      done: false,
      progress: 0,
      result: '',
      errorReason: '',
      createdAt: at,
      updatedAt: at,
      // Fixed before it is published: a resumed rotation never records a second event for the same version.
      auditEvent: {
        eventId: newEventId(),
        occurredAt: at.getTime(),
        event: {
          tenantId,
          action: ROTATE_AUDIT_ACTION,
          actor: input.actor,
          resourceIds: [`${keyKind}:v${version}`],
          ...(input.purpose ? { purposeCode: input.purpose.code } : {}),
          ...(input.purpose?.ticket ? { ticketRef: input.purpose.ticket } : {}),
          outcome: 'succeeded',
        },
      },
      rotation: { keyKind, version, stage: 'audit' },
    };
  }
  await deps.operations.save(op);
  const stage = (next: RotationState['stage']): OperationRecord => ({
    ...op,
    rotation: { ...op.rotation!, stage: next },
    updatedAt: now(),
  });
  try {
    // 1. Nothing changes before the rotation is on the record.
    if (op.rotation!.stage === 'audit') {
      const audit = op.auditEvent!;
      await deps.audit.publishEntry(audit.event, audit.eventId, new Date(audit.occurredAt));
      op = stage('audited');
      await deps.operations.save(op);
    }
    // 2. The new version, unless an earlier attempt created it; its event is queued with the operation's state.
    if (op.rotation!.stage === 'audited') {
      const { version } = op.rotation!;
      let latest = await deps.inventory.latestVersion(tenantId, keyKind);
      if (latest < version) {
        latest = keyKind === 'kek' ? await deps.keys.rotateKek(tenantId) : await deps.keys.rotateIndexRoot(tenantId);
      }
      if (latest !== version) {
        throw new VaultError(
          'FAILED_PRECONDITION',
          'another version of this key was created outside the rotation; run the rotation again',
        );
      }
      op = stage('created');
      await deps.operations.saveWithEvents(op, [tenantKeyRotatedEvent({ tenantId, keyKind, version, at: now() })]);
    }
  } catch (err) {
    await deps.operations.save({ ...op, done: true, errorReason: reasonOf(err), updatedAt: now() }).catch(() => {
      // The failure is still thrown; the record says "running" until the next call resumes it.
    });
    throw err;
  }
  return op;
}

/** The background part: rewrap or re-index, then the operation's result and its `retired` event. */
async function runRotation(deps: RotateDeps, operation: OperationRecord, lease: HeldLease): Promise<OperationRecord> {
  const now = deps.now ?? (() => new Date());
  const { tenantId } = operation;
  const { keyKind, version } = operation.rotation!;
  const progress = (p: number): Promise<void> => {
    lease.signal.throwIfAborted();
    return deps.operations.save({ ...operation, progress: Math.min(0.99, p), updatedAt: now() });
  };
  try {
    await useCurrentVersion(deps, tenantId, keyKind, version);
    const summary =
      keyKind === 'kek'
        ? await rewrapAll(deps, tenantId, version, progress, lease.signal)
        : await reindexAll(deps, tenantId, version, progress, lease.signal);
    lease.signal.throwIfAborted();
    const at = now();
    const finished: OperationRecord = {
      ...operation,
      done: true,
      progress: 1,
      result: JSON.stringify(summary),
      errorReason: '',
      updatedAt: at,
    };
    const retired = Array.from({ length: version - 1 }, (_, i) => i + 1);
    await deps.operations.saveWithEvents(finished, [
      tenantKeyRetiredEvent({ tenantId, keyKind, version, retired, at }),
    ]);
    return finished;
  } catch (err) {
    const failed = { ...operation, done: true, errorReason: reasonOf(err), updatedAt: now() };
    // A run that lost its lease leaves the record to whoever took the rotation over.
    if (!lease.signal.aborted) await deps.operations.save(failed).catch(() => undefined);
    return failed;
  }
}

/**
 * Makes this replica's key cache see `version` as current. A rotation resumed by another replica than the one that
 * created the version may still hold the older one as current (for up to a cache window): forget the cache then.
 */
async function useCurrentVersion(
  deps: RotateDeps,
  tenantId: string,
  keyKind: 'kek' | 'index',
  version: number,
): Promise<void> {
  const current =
    keyKind === 'kek'
      ? (await deps.keys.currentKek(tenantId)).version
      : (await deps.keys.currentIndexKeys(tenantId)).keyVersion;
  if (current !== version) deps.keys.clear();
}

/** Polls an operation another run is advancing, until it is done (or stops changing). */
async function followOperation(operations: OperationRepository, operationId: string): Promise<OperationRecord> {
  for (;;) {
    const op = await operations.get(operationId);
    if (!op) throw new VaultError('OPERATION_NOT_FOUND', 'no such operation', 'operation_id');
    if (op.done || Date.now() - op.updatedAt.getTime() > FOLLOW_STALE_MS) return op;
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function rewrapAll(
  deps: RotateDeps,
  tenantId: string,
  newVersion: number,
  progress: (p: number) => Promise<void>,
  signal: AbortSignal,
): Promise<{ keyKind: 'kek'; version: number; rewrapped: number; retired: number[] }> {
  const retiredBefore = new Set(await deps.inventory.retired(tenantId, 'kek'));
  const old = Array.from({ length: newVersion - 1 }, (_, i) => i + 1).filter((v) => !retiredBefore.has(v));
  const total = Math.max(1, await deps.inventory.countDataKeys(tenantId));
  let rewrapped = 0;
  // Passes repeat until no data key uses an old version: writers that picked the old KEK just before the rotation
  // (another replica within its cache window) are caught by a later pass.
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    for (const version of old) {
      let after: string | undefined;
      for (;;) {
        signal.throwIfAborted();
        const ids = await deps.inventory.contactsUsingKek(tenantId, version, {
          ...(after !== undefined ? { after } : {}),
          limit: PAGE,
        });
        if (ids.length === 0) break;
        for (const id of ids) if ((await deps.cipher.rewrap(tenantId, id)) === 'rewrapped') rewrapped++;
        after = ids[ids.length - 1];
        await progress(rewrapped / total);
      }
    }
    let remaining = 0;
    for (const version of old) remaining += await deps.inventory.countUsingKek(tenantId, version);
    if (remaining === 0) {
      const at = (deps.now ?? (() => new Date()))();
      for (const version of old) await deps.inventory.retire(tenantId, 'kek', version, at);
      return { keyKind: 'kek', version: newVersion, rewrapped, retired: olderThan(newVersion) };
    }
    await new Promise((r) => setTimeout(r, 50 * (pass + 1)));
  }
  throw new VaultError(
    'FAILED_PRECONDITION',
    'data keys kept appearing under an old KEK version; run the rotation again',
  );
}

const olderThan = (version: number): number[] => Array.from({ length: version - 1 }, (_, i) => i + 1);

/** What a re-index found, ids only. */
interface ReindexFindings {
  reindexed: number;
  /** Contacts whose stored values changed under the current rules (re-sealed, a new contact version). */
  renormalized: number;
  /**
   * Contacts whose values under the current rules belong to another contact (e.g. a.b@gmail.com once ab@gmail.com
   * exists and folding is on): never merged; they keep their values as stored, indexed as they are.
   */
  readonly conflicts: Set<string>;
  /** Contacts whose stored values the current rules refuse (e.g. an empty local part after folding): kept as stored. */
  readonly invalid: Set<string>;
}

async function reindexAll(
  deps: RotateDeps,
  tenantId: string,
  newVersion: number,
  progress: (p: number) => Promise<void>,
  signal: AbortSignal,
): Promise<{
  keyKind: 'index';
  version: number;
  normVersion: number;
  reindexed: number;
  renormalized: number;
  conflicts: number;
  conflictContactIds: string[];
  invalid: number;
  invalidContactIds: string[];
  retired: number[];
}> {
  const total = Math.max(1, await deps.inventory.countDataKeys(tenantId));
  const rules = deps.policies.of(tenantId).normalization;
  const findings: ReindexFindings = { reindexed: 0, renormalized: 0, conflicts: new Set(), invalid: new Set() };
  const retiredBefore = new Set(await deps.inventory.retired(tenantId, 'index'));
  const old = olderThan(newVersion).filter((v) => !retiredBefore.has(v));
  // The new version first, then the older live ones: what lookups consult during the job.
  const live: BlindIndexKeys[] = [await deps.keys.indexKeys(tenantId, newVersion)];
  for (const v of [...old].reverse()) live.push(await deps.keys.indexKeys(tenantId, v));
  const liveVersions = new Set([newVersion, ...old]);
  // Phase 1 (progress 0–0.8): every contact gets entries of every live version (old and new), computed from its
  // values under the current rules; passes repeat until one finds nothing to do, so contacts written by upserts that
  // started before the rotation are covered too.
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    let changed = 0;
    await forEachContact(deps, tenantId, signal, async (contactId) => {
      if (await reindexOne(deps, tenantId, contactId, live, (i) => liveVersions.has(i.keyVersion), rules, findings)) {
        changed++;
        findings.reindexed++;
        if (findings.reindexed % PAGE === 0) await progress((0.8 * findings.reindexed) / total);
      }
    });
    if (changed === 0) break;
    if (pass === MAX_PASSES - 1) {
      throw new VaultError('FAILED_PRECONDITION', 'contacts kept changing during the re-index; run it again');
    }
  }
  // Phase 2: retire the old versions (lookups stop consulting them), then drop their entries.
  const at = (deps.now ?? (() => new Date()))();
  for (const version of old) await deps.inventory.retire(tenantId, 'index', version, at);
  await progress(0.85);
  const current = [live[0]!];
  await forEachContact(deps, tenantId, signal, async (contactId) => {
    await reindexOne(deps, tenantId, contactId, current, (i) => i.keyVersion === newVersion, rules, findings);
  });
  const listed = (ids: Set<string>): string[] => [...ids].sort().slice(0, MAX_LISTED_IDS);
  return {
    keyKind: 'index',
    version: newVersion,
    normVersion: NORM_VERSION,
    reindexed: findings.reindexed,
    renormalized: findings.renormalized,
    conflicts: findings.conflicts.size,
    conflictContactIds: listed(findings.conflicts),
    invalid: findings.invalid.size,
    invalidContactIds: listed(findings.invalid),
    retired: olderThan(newVersion),
  };
}

async function forEachContact(
  deps: RotateDeps,
  tenantId: string,
  signal: AbortSignal,
  fn: (contactId: string) => Promise<void>,
): Promise<void> {
  let after: string | undefined;
  for (;;) {
    signal.throwIfAborted();
    const page = await deps.contacts.list(tenantId, { pageSize: PAGE, ...(after !== undefined ? { after } : {}) });
    for (const c of page.contacts) await fn(c.contactId);
    if (page.nextAfter === undefined) break;
    after = page.nextAfter;
  }
}

/**
 * Brings one contact's indexes to the indexes of `keys` over its values under the current rules `rules`: claims the
 * new entries first, and releases dropped ones only after the contact stopped listing them. When the rules change a
 * stored value (folding turned on), the record is sealed again with the new value, as a new contact version, so its
 * record and indexes keep matching. A value another contact already owns is a conflict: the contact keeps its values
 * as stored (never merged). Retries when the contact changed meanwhile. True when it changed.
 */
async function reindexOne(
  deps: RotateDeps,
  tenantId: string,
  contactId: string,
  keys: readonly BlindIndexKeys[],
  keep: (i: { keyVersion: number }) => boolean,
  rules: NormalizationPolicy,
  findings: ReindexFindings,
): Promise<boolean> {
  for (let attempt = 0; attempt < 50; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(5 * attempt, 50)));
    const contact = await deps.contacts.get(tenantId, contactId);
    if (!contact) return false;
    let stored: ContactFields;
    try {
      stored = fromOpened(await deps.cipher.open(tenantId, contactId, contact.record));
    } catch {
      return false; // erased meanwhile (no key): nothing to index
    }
    const candidates: ContactFields[] = [];
    const renormalized = underRules(stored, rules);
    if (renormalized === undefined) findings.invalid.add(contactId);
    else if (!sameFields(stored, renormalized)) candidates.push(renormalized);
    candidates.push(stored);

    const at = (deps.now ?? (() => new Date()))();
    let chosen: { fields: ContactFields; wanted: BlindIndex[]; fresh: BlindIndex[] } | undefined;
    let busy = false;
    for (const fields of candidates) {
      const wanted = indexesOf(keys, fields);
      const fresh = wanted.filter((n) => !contact.indexes.some((o) => sameIndex(o, n)));
      const claimed = await claimFresh(deps, tenantId, contactId, fresh, at);
      if (claimed === 'claimed') {
        chosen = { fields, wanted, fresh };
        break;
      }
      if (claimed === 'busy') {
        busy = true;
        break;
      }
      findings.conflicts.add(contactId);
    }
    if (busy) continue;
    // Every candidate collides (a duplicate written meanwhile under the same rules): leave the contact as it is.
    if (!chosen) return false;
    const { fields, wanted, fresh } = chosen;

    if (!sameFields(stored, fields)) {
      // New values: the record must say what the indexes say, so it is sealed again and every index recomputed.
      const dropped = contact.indexes.filter((o) => !wanted.some((n) => sameIndex(o, n)));
      const next: StoredContact = {
        ...contact,
        version: contact.version + 1,
        record: await deps.cipher.seal(tenantId, contactId, toSealable(fields)),
        fieldKinds: fieldKindsOf(fields),
        indexes: wanted,
        // A change of rules is not the person's activity: retention still counts from the last real write.
        updatedAt: at,
      };
      if (await deps.contacts.update(next, contact.version, contactUpsertedEvent(next, false))) {
        for (const index of dropped) await deps.indexEntries.release(indexKeyOf(tenantId, index), contactId);
        findings.renormalized++;
        return true;
      }
      for (const index of fresh) await deps.indexEntries.release(indexKeyOf(tenantId, index), contactId);
      continue;
    }
    const dropped = contact.indexes.filter((o) => !wanted.some((n) => sameIndex(o, n)) && !keep(o));
    if (fresh.length === 0 && dropped.length === 0) return false;
    const next = [...contact.indexes.filter((o) => !dropped.some((d) => sameIndex(o, d))), ...fresh];
    if (await deps.contacts.replaceIndexes(tenantId, contactId, contact.version, next)) {
      for (const index of dropped) await deps.indexEntries.release(indexKeyOf(tenantId, index), contactId);
      return true;
    }
    for (const index of fresh) await deps.indexEntries.release(indexKeyOf(tenantId, index), contactId);
  }
  throw new VaultError('CONCURRENT_UPDATE', 'a contact kept changing during the re-index; run it again');
}

/** A contact's stored values normalised again under `rules`; undefined when the rules refuse them. */
function underRules(stored: ContactFields, rules: NormalizationPolicy): ContactFields | undefined {
  try {
    return normalizeFields(
      { email: stored.email ?? null, phone: stored.phone ?? null, name: stored.name ?? null },
      rules,
    );
  } catch (err) {
    if (err instanceof VaultError && err.code === 'INVALID_ARGUMENT') return undefined;
    throw err;
  }
}

/**
 * Claims `indexes` for the contact. `conflict` when another contact owns one (its contact lists it), `busy` when
 * another writer's claim is in flight (or crashed: taken over after the grace period); nothing stays claimed then.
 */
async function claimFresh(
  deps: RotateDeps,
  tenantId: string,
  contactId: string,
  indexes: readonly BlindIndex[],
  at: Date,
): Promise<'claimed' | 'conflict' | 'busy'> {
  const claimed: BlindIndex[] = [];
  const undo = async (): Promise<void> => {
    for (const index of claimed) await deps.indexEntries.release(indexKeyOf(tenantId, index), contactId);
  };
  for (const index of indexes) {
    const result = await deps.indexEntries.claim({ ...indexKeyOf(tenantId, index), contactId, claimedAt: at });
    if (result.claimed || result.owner.contactId === contactId) {
      if (result.claimed) claimed.push(index);
      continue;
    }
    await undo();
    const owner = await deps.contacts.get(tenantId, result.owner.contactId);
    if (owner?.indexes.some((i) => sameIndex(i, result.owner))) return 'conflict';
    if (at.getTime() - result.owner.claimedAt.getTime() > (deps.claimGraceMs ?? DEFAULT_CLAIM_GRACE_MS)) {
      await deps.indexEntries.release(indexKeyOf(tenantId, result.owner), result.owner.contactId);
    }
    return 'busy';
  }
  return 'claimed';
}
