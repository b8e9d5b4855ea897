import { randomBytes } from 'node:crypto';
import { VaultError, assertTenantId, fromOpened, invalidField } from '../domain';
import type { AuditPublisher, VaultAuditEvent } from '../ports/audit-publisher';
import type { KeyInventory } from '../ports/key-inventory';
import type { OperationRecord, OperationRepository } from '../ports/operation-repository';
import { liveIndexKeys } from './index-versions';
import type { StatedPurpose } from './reveal-contact';
import { indexesOf } from './upsert-contact';
import { indexKeyOf, sameIndex, type VaultDeps } from './vault-deps';

/** Audit action of a rotation; subject token `key_rotate`. */
export const ROTATE_AUDIT_ACTION = 'key.rotate';
const PAGE = 200;
/** Verification passes before a rotation gives up waiting for writers that still use the old version. */
const MAX_PASSES = 20;

export type RotateDeps = VaultDeps & {
  readonly audit: AuditPublisher;
  readonly inventory: KeyInventory;
  readonly operations: OperationRepository;
};

export interface RotateTenantKeyInput {
  readonly tenantId: string;
  readonly keyKind: 'kek' | 'index';
  readonly actor: VaultAuditEvent['actor'];
  readonly purpose?: StatedPurpose;
}

/**
 * Rotates a tenant key as a long-running operation. `kek`: a new KEK version, then every data key is rewrapped
 * (progress = rewrapped / data keys) and older versions are retired once no data key uses them. `index`: a new
 * index-root version, then a re-index job writes entries of the new version beside the old (lookups consult both
 * meanwhile), retires the old version and removes its entries. The audit event is recorded before the work starts
 * (fail closed). Throws VaultError INVALID_ARGUMENT, AUDIT_UNAVAILABLE.
 */
export async function startRotateTenantKey(
  deps: RotateDeps,
  input: RotateTenantKeyInput,
): Promise<{ operation: OperationRecord; done: Promise<OperationRecord> }> {
  assertTenantId(input.tenantId);
  if (input.keyKind !== 'kek' && input.keyKind !== 'index') throw invalidField('key_kind', "must be 'kek' or 'index'");
  const now = deps.now ?? (() => new Date());
  const newVersion =
    input.keyKind === 'kek'
      ? await deps.keys.rotateKek(input.tenantId)
      : await deps.keys.rotateIndexRoot(input.tenantId);
  await deps.audit.record({
    tenantId: input.tenantId,
    action: ROTATE_AUDIT_ACTION,
    actor: input.actor,
    resourceIds: [`${input.keyKind}:v${newVersion}`],
    ...(input.purpose ? { purposeCode: input.purpose.code } : {}),
    ...(input.purpose?.ticket ? { ticketRef: input.purpose.ticket } : {}),
    outcome: 'succeeded',
  });
  const at = now();
  const operation: OperationRecord = {
    operationId: `op_rot_${at.getTime().toString(36)}${randomBytes(6).toString('hex')}`,
    kind: 'rotate-tenant-key',
    tenantId: input.tenantId,
    done: false,
    progress: 0,
    result: '',
    errorReason: '',
    createdAt: at,
    updatedAt: at,
  };
  await deps.operations.save(operation);
  const progress = (p: number): Promise<void> =>
    deps.operations.save({ ...operation, progress: Math.min(0.99, p), updatedAt: now() });
  const work =
    input.keyKind === 'kek'
      ? rewrapAll(deps, input.tenantId, newVersion, progress)
      : reindexAll(deps, input.tenantId, newVersion, progress);
  const done = work.then(
    async (summary) => {
      const finished = { ...operation, done: true, progress: 1, result: JSON.stringify(summary), updatedAt: now() };
      await deps.operations.save(finished);
      return finished;
    },
    async (err: unknown) => {
      const reason = err instanceof VaultError ? err.code : String((err as { code?: unknown })?.code ?? 'INTERNAL');
      const failed = { ...operation, done: true, errorReason: reason, updatedAt: now() };
      await deps.operations.save(failed).catch(() => undefined);
      return failed;
    },
  );
  return { operation, done };
}

async function rewrapAll(
  deps: RotateDeps,
  tenantId: string,
  newVersion: number,
  progress: (p: number) => Promise<void>,
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
      return { keyKind: 'kek', version: newVersion, rewrapped, retired: old };
    }
    await new Promise((r) => setTimeout(r, 50 * (pass + 1)));
  }
  throw new VaultError(
    'FAILED_PRECONDITION',
    'data keys kept appearing under an old KEK version; run the rotation again',
  );
}

async function reindexAll(
  deps: RotateDeps,
  tenantId: string,
  newVersion: number,
  progress: (p: number) => Promise<void>,
): Promise<{ keyKind: 'index'; version: number; reindexed: number; retired: number[] }> {
  const total = Math.max(1, await deps.inventory.countDataKeys(tenantId));
  let reindexed = 0;
  // Phase 1 (progress 0–0.8): every contact gets entries of every live version (old and new); passes repeat until
  // one finds nothing to do, so contacts written by upserts that started before the rotation are covered too.
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    let changed = 0;
    await forEachContact(deps, tenantId, async (contactId) => {
      const live = await liveIndexKeys(deps, tenantId);
      if (await reindexOne(deps, tenantId, contactId, live, (i) => live.some((k) => k.keyVersion === i.keyVersion))) {
        changed++;
        reindexed++;
        if (reindexed % PAGE === 0) await progress((0.8 * reindexed) / total);
      }
    });
    if (changed === 0) break;
    if (pass === MAX_PASSES - 1) {
      throw new VaultError('FAILED_PRECONDITION', 'contacts kept changing during the re-index; run it again');
    }
  }
  // Phase 2: retire the old versions (lookups stop consulting them), then drop their entries.
  const retiredBefore = new Set(await deps.inventory.retired(tenantId, 'index'));
  const old = Array.from({ length: newVersion - 1 }, (_, i) => i + 1).filter((v) => !retiredBefore.has(v));
  const at = (deps.now ?? (() => new Date()))();
  for (const version of old) await deps.inventory.retire(tenantId, 'index', version, at);
  await progress(0.85);
  const current = [await deps.keys.indexKeys(tenantId, newVersion)];
  await forEachContact(deps, tenantId, async (contactId) => {
    await reindexOne(deps, tenantId, contactId, current, (i) => i.keyVersion === newVersion);
  });
  return { keyKind: 'index', version: newVersion, reindexed, retired: old };
}

async function forEachContact(
  deps: RotateDeps,
  tenantId: string,
  fn: (contactId: string) => Promise<void>,
): Promise<void> {
  let after: string | undefined;
  for (;;) {
    const page = await deps.contacts.list(tenantId, { pageSize: PAGE, ...(after !== undefined ? { after } : {}) });
    for (const c of page.contacts) await fn(c.contactId);
    if (page.nextAfter === undefined) break;
    after = page.nextAfter;
  }
}

/**
 * Brings one contact's indexes to exactly the indexes of `keys` (claiming new entries first, releasing dropped ones
 * after the contact stopped listing them). Retries when the contact changed meanwhile. True when it changed.
 */
async function reindexOne(
  deps: RotateDeps,
  tenantId: string,
  contactId: string,
  keys: Parameters<typeof indexesOf>[0],
  keep: (i: { keyVersion: number }) => boolean,
): Promise<boolean> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const contact = await deps.contacts.get(tenantId, contactId);
    if (!contact) return false;
    let fields;
    try {
      fields = fromOpened(await deps.cipher.open(tenantId, contactId, contact.record));
    } catch {
      return false; // erased meanwhile (no key): nothing to index
    }
    const wanted = indexesOf(keys, fields);
    const fresh = wanted.filter((n) => !contact.indexes.some((o) => sameIndex(o, n)));
    const dropped = contact.indexes.filter((o) => !wanted.some((n) => sameIndex(o, n)) && !keep(o));
    if (fresh.length === 0 && dropped.length === 0) return false;
    const at = (deps.now ?? (() => new Date()))();
    for (const index of fresh) {
      await deps.indexEntries.claim({ ...indexKeyOf(tenantId, index), contactId, claimedAt: at });
    }
    const next = [...contact.indexes.filter((o) => !dropped.some((d) => sameIndex(o, d))), ...fresh];
    if (await deps.contacts.replaceIndexes(tenantId, contactId, contact.version, next)) {
      for (const index of dropped) await deps.indexEntries.release(indexKeyOf(tenantId, index), contactId);
      return true;
    }
  }
  throw new VaultError('CONCURRENT_UPDATE', 'a contact kept changing during the re-index; run it again');
}
