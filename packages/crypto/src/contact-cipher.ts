import { generateDataKey, unwrapDataKey, wrapDataKey, type DataKeyStore } from './data-key';
import { KeyNotFoundError } from './errors';
import type { KeyHierarchy } from './key-hierarchy';
import type { DataKey, TenantKek, WrappedDataKey } from './keys';
import { openRecord, sealRecord } from './record-cipher';

/** A new contact sealed without a key store: its record and the data key to store beside it (wrapped). */
export interface SealedNewContact {
  readonly record: Buffer;
  readonly dataKey: WrappedDataKey;
}

/**
 * Seals a contact id that no key store has seen yet (just minted): a fresh data key wrapped by `kek`, the record
 * under it, the plaintext key zeroed. Pure, so a worker thread can do it for a batch; the caller stores `dataKey`
 * create-if-absent before the record and counts the KEK use. `ContactCipher.seal` is the way with a key store.
 */
export function sealNewContact(
  kek: TenantKek,
  contactId: string,
  fields: Readonly<Record<string, string>>,
): SealedNewContact {
  const fresh = generateDataKey();
  try {
    const dataKey = wrapDataKey(kek, contactId, fresh);
    const record = sealRecord(
      { tenantId: kek.tenantId, contactId },
      { dataKeyId: fresh.dataKeyId, kekVersion: kek.version, key: fresh.key },
      fields,
    );
    return { record, dataKey };
  } finally {
    fresh.key.fill(0);
  }
}

/** Outcome of `ContactCipher.rewrap`. */
export type RewrapOutcome = 'rewrapped' | 'already-current' | 'missing';

/**
 * Encrypts and decrypts whole contacts: the per-contact data key comes from the key store (created on the
 * first write, wrapped by the tenant's current KEK), the record is one AES-256-GCM call with a fresh nonce.
 *
 * A contact keeps its data key across writes (a fresh random nonce each time): with the key store a
 * separate database, replacing the key on every write would leave a window in which the stored record and
 * the stored key disagree. Erasure deletes the key (`shred`).
 */
export class ContactCipher {
  private readonly keys: KeyHierarchy;
  private readonly dataKeys: DataKeyStore;

  constructor(options: { keys: KeyHierarchy; dataKeys: DataKeyStore }) {
    this.keys = options.keys;
    this.dataKeys = options.dataKeys;
  }

  /**
   * Seals all `fields` of the contact. Throws KMS errors (fail closed) and TypeError on invalid input.
   * `firstWrite`: the caller has just minted this contact id, so no key can exist yet and the key store is not asked
   * for one first (a read saved per created contact). Still safe if wrong: the key is stored create-if-absent, and a
   * key found there is the one used.
   */
  async seal(
    tenantId: string,
    contactId: string,
    fields: Readonly<Record<string, string>>,
    options: { readonly firstWrite?: boolean } = {},
  ): Promise<Buffer> {
    // Cached keys are taken synchronously: a record costs the key store's calls, not an await per key too.
    const existing = options.firstWrite ? undefined : await this.dataKeys.get(tenantId, contactId);
    let dataKey: DataKey;
    let kekVersion: number;
    if (existing) {
      const kek =
        this.keys.cachedKek(tenantId, existing.kekVersion) ?? (await this.keys.kek(tenantId, existing.kekVersion));
      dataKey = unwrapDataKey(kek, contactId, existing);
      kekVersion = existing.kekVersion;
    } else {
      // First write: a fresh data key, stored create-if-absent.
      const kek = this.keys.cachedCurrentKek(tenantId) ?? (await this.keys.currentKek(tenantId));
      const fresh = generateDataKey();
      let stored: WrappedDataKey;
      try {
        stored = await this.dataKeys.put(tenantId, contactId, wrapDataKey(kek, contactId, fresh));
      } catch (error) {
        fresh.key.fill(0);
        throw error;
      }
      if (stored.dataKeyId === fresh.dataKeyId) {
        dataKey = fresh;
      } else {
        fresh.key.fill(0);
        // A concurrent first write won: use its key so both records stay readable.
        const winnerKek = await this.keys.kek(tenantId, stored.kekVersion);
        dataKey = unwrapDataKey(winnerKek, contactId, stored);
      }
      kekVersion = stored.kekVersion;
    }
    try {
      return sealRecord(
        { tenantId, contactId },
        { dataKeyId: dataKey.dataKeyId, kekVersion, key: dataKey.key },
        fields,
      );
    } finally {
      dataKey.key.fill(0);
    }
  }

  /**
   * Opens a record of the contact. Throws `KeyNotFoundError` when the contact's data key is gone
   * (crypto-shredded), `DecryptionError` when the record or the key was tampered with or moved.
   */
  async open(tenantId: string, contactId: string, record: Uint8Array): Promise<Record<string, string>> {
    const wrapped = await this.dataKeys.get(tenantId, contactId);
    if (!wrapped) throw new KeyNotFoundError('The contact has no data key (erased or never written)');
    const kek =
      this.keys.cachedKek(tenantId, wrapped.kekVersion) ?? (await this.keys.kek(tenantId, wrapped.kekVersion));
    const dataKey = unwrapDataKey(kek, contactId, wrapped);
    try {
      // A record naming another data key id fails inside openRecord, as tampering.
      return openRecord({ tenantId, contactId }, dataKey, record);
    } finally {
      dataKey.key.fill(0);
    }
  }

  /** Rewraps the contact's data key under the tenant's current KEK (the KEK-rotation job, per contact). */
  async rewrap(tenantId: string, contactId: string): Promise<RewrapOutcome> {
    const wrapped = await this.dataKeys.get(tenantId, contactId);
    if (!wrapped) return 'missing';
    const current = await this.keys.currentKek(tenantId);
    if (wrapped.kekVersion === current.version) return 'already-current';
    const dataKey = unwrapDataKey(await this.keys.kek(tenantId, wrapped.kekVersion), contactId, wrapped);
    const rewrapped = wrapDataKey(current, contactId, dataKey);
    dataKey.key.fill(0);
    const replaced = await this.dataKeys.rewrap(tenantId, contactId, rewrapped);
    return replaced ? 'rewrapped' : 'missing';
  }

  /** Crypto-shreds the contact: deletes its data key. Returns whether a key existed. */
  async shred(tenantId: string, contactId: string): Promise<boolean> {
    return this.dataKeys.delete(tenantId, contactId);
  }
}
