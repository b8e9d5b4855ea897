import { createSecretKey, randomBytes } from 'node:crypto';
import { deriveBlindIndexKeys, type BlindIndexKeys, type SuppressionKey } from './blind-index';
import { KeyNotFoundError, KmsAccessDeniedError } from './errors';
import { assertId } from './ids';
import { KeyCache, type KeyCacheOptions, type KeyCacheStats } from './key-cache';
import type { TenantKek } from './keys';
import type { EncryptionContext, KeyManagementService } from './kms/key-management-service';

/**
 * The tenant level of the key hierarchy (DESIGN "Keys and encryption"):
 *
 *   per-tenant KMS key ─┬─ KEK, versioned            KMS context {tenant, purpose: 'kek', version}
 *                       ├─ blind-index root, versioned KMS context {tenant, purpose: 'index', version}
 *                       └─ suppression key, version 1 forever, KMS context {tenant, purpose: 'suppression'}
 *
 * Each is 256 random bits generated here and stored only KMS-wrapped in a `TenantKeyStore`. Plaintext
 * copies live in `KeyCache`s bounded by age and uses, so KMS is called per key and cache window, not per
 * record; when KMS is down, work continues until an entry expires and then fails with KMS_UNAVAILABLE.
 */

export type TenantKeyPurpose = 'kek' | 'index' | 'suppression';

/** A tenant key as persisted: only the KMS-wrapped form, plus the KMS key id it was wrapped under. */
export interface WrappedTenantKey {
  tenantId: string;
  purpose: TenantKeyPurpose;
  version: number;
  kmsKeyId: string;
  ciphertextBlob: Uint8Array;
  createdAt: Date;
}

/** Persistence of wrapped tenant keys (adapters for MongoDB and SQLite belong to the vault). */
export interface TenantKeyStore {
  get(tenantId: string, purpose: TenantKeyPurpose, version: number): Promise<WrappedTenantKey | undefined>;
  /** The highest version for (tenant, purpose), or undefined when there is none yet. */
  latest(tenantId: string, purpose: TenantKeyPurpose): Promise<WrappedTenantKey | undefined>;
  /**
   * Create-if-absent on (tenant, purpose, version); returns what is stored afterwards (another writer's
   * key if it got there first), so replicas racing to create a version converge on one key.
   */
  insert(key: WrappedTenantKey): Promise<WrappedTenantKey>;
}

/** `TenantKeyStore` in memory, for tests and as the reference behaviour for the database adapters. */
export class InMemoryTenantKeyStore implements TenantKeyStore {
  private readonly keys = new Map<string, WrappedTenantKey>();

  async get(tenantId: string, purpose: TenantKeyPurpose, version: number): Promise<WrappedTenantKey | undefined> {
    const key = this.keys.get(`${tenantId}\u0000${purpose}\u0000${version}`);
    return key && { ...key, ciphertextBlob: Uint8Array.from(key.ciphertextBlob) };
  }

  async latest(tenantId: string, purpose: TenantKeyPurpose): Promise<WrappedTenantKey | undefined> {
    let best: WrappedTenantKey | undefined;
    for (const key of this.keys.values()) {
      if (key.tenantId === tenantId && key.purpose === purpose && (!best || key.version > best.version)) best = key;
    }
    return best && { ...best, ciphertextBlob: Uint8Array.from(best.ciphertextBlob) };
  }

  async insert(key: WrappedTenantKey): Promise<WrappedTenantKey> {
    const id = `${key.tenantId}\u0000${key.purpose}\u0000${key.version}`;
    const existing = this.keys.get(id);
    if (existing) return { ...existing, ciphertextBlob: Uint8Array.from(existing.ciphertextBlob) };
    this.keys.set(id, { ...key, ciphertextBlob: Uint8Array.from(key.ciphertextBlob) });
    return key;
  }

  /** Test hook: every stored record (wrapped keys only). */
  all(): WrappedTenantKey[] {
    return [...this.keys.values()];
  }
}

/**
 * Maps a tenant to its KMS key id: `template` with `{tenant}` replaced (e.g. 'alias/sealpost-{tenant}'),
 * unless `map` names the tenant explicitly.
 */
export function kmsKeyIdResolver(options: {
  template?: string;
  map?: Readonly<Record<string, string>>;
}): (tenantId: string) => string {
  const { template, map } = options;
  if (!template && !map) throw new TypeError('kmsKeyIdResolver needs a template or a map');
  if (template && !template.includes('{tenant}')) {
    throw new TypeError("The KMS key id template must contain '{tenant}' (one KMS key per tenant)");
  }
  return (tenantId) => {
    assertId('tenantId', tenantId);
    const mapped = map?.[tenantId];
    if (mapped) return mapped;
    if (!template) throw new KeyNotFoundError('No KMS key is configured for this tenant');
    return template.replaceAll('{tenant}', tenantId);
  };
}

export interface KeyHierarchyOptions {
  kms: KeyManagementService;
  /** Per-tenant KMS key id, e.g. from `kmsKeyIdResolver`. Used when creating keys; unwrap uses the stored id. */
  kmsKeyIdFor: (tenantId: string) => string;
  tenantKeys: TenantKeyStore;
  /** Plaintext key cache bounds; defaults: 5 minutes and 1,000,000 uses. */
  cache?: Partial<KeyCacheOptions>;
}

/** Counters of the three tenant-key caches together. */
export type KeyHierarchyStats = KeyCacheStats;

const DEFAULT_MAX_AGE_MS = 5 * 60_000;
const DEFAULT_MAX_USES = 1_000_000;
const SUPPRESSION_VERSION = 1;

/** Unwraps, creates and rotates tenant keys through KMS, caching plaintext within bounds. */
export class KeyHierarchy {
  private readonly kms: KeyManagementService;
  private readonly kmsKeyIdFor: (tenantId: string) => string;
  private readonly store: TenantKeyStore;
  private readonly now: () => number;
  private readonly maxAgeMs: number;
  private readonly keks: KeyCache<TenantKek>;
  private readonly indexes: KeyCache<BlindIndexKeys>;
  private readonly suppression: KeyCache<SuppressionKey>;
  // Which version is current, remembered for the same window as keys (a rotation elsewhere is picked up
  // within one window; older versions stay readable, so the lag is harmless). Keyed by purpose and tenant, with the
  // key cache id of that version, so the per-record lookup builds no strings.
  private readonly currentVersions = {
    kek: new Map<string, CurrentVersion>(),
    index: new Map<string, CurrentVersion>(),
  };

  constructor(options: KeyHierarchyOptions) {
    this.kms = options.kms;
    this.kmsKeyIdFor = options.kmsKeyIdFor;
    this.store = options.tenantKeys;
    this.now = options.cache?.now ?? Date.now;
    this.maxAgeMs = options.cache?.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    const cacheOptions: KeyCacheOptions = {
      maxAgeMs: this.maxAgeMs,
      maxUses: options.cache?.maxUses ?? DEFAULT_MAX_USES,
      now: this.now,
      ...(options.cache?.maxEntries ? { maxEntries: options.cache.maxEntries } : {}),
    };
    this.keks = new KeyCache({ ...cacheOptions, kind: 'kek' });
    this.indexes = new KeyCache({ ...cacheOptions, kind: 'index' });
    this.suppression = new KeyCache({ ...cacheOptions, kind: 'suppression' });
  }

  // The public getters below are plain functions with a synchronous cache-hit path: a per-record call
  // should cost a map lookup, not a chain of async hops.

  /** The tenant's current KEK, creating version 1 on first use. Throws KMS errors when it must unwrap. */
  currentKek(tenantId: string): Promise<TenantKek> {
    const hit = this.cachedCurrentKek(tenantId);
    return hit ? Promise.resolve(hit) : this.currentVersion(tenantId, 'kek').then((v) => this.kek(tenantId, v));
  }

  /**
   * The current KEK if it is cached and within its bounds (counting one use, like `currentKek`), else undefined:
   * then call `currentKek`. Lets a per-record caller skip an async hop.
   */
  cachedCurrentKek(tenantId: string): TenantKek | undefined {
    const current = this.knownCurrentVersion(tenantId, 'kek');
    return current === undefined ? undefined : this.keks.getCached(current.cacheId);
  }

  /**
   * The current KEK for `uses` wraps done elsewhere (a worker thread sealing a batch), counted now: undefined when it
   * is not cached or has fewer uses left within its bounds (then seal in line, which reloads as needed).
   */
  reserveCurrentKek(tenantId: string, uses: number): TenantKek | undefined {
    const current = this.knownCurrentVersion(tenantId, 'kek');
    return current === undefined ? undefined : this.keks.getCached(current.cacheId, uses);
  }

  /** The current KEK version as this process knows it within the cache window (no use counted); else undefined. */
  currentKekVersion(tenantId: string): number | undefined {
    return this.knownCurrentVersion(tenantId, 'kek')?.version;
  }

  /** A specific KEK version. Throws `KeyNotFoundError` if it was never created. */
  kek(tenantId: string, version: number): Promise<TenantKek> {
    const id = cacheId(tenantId, 'kek', version);
    const hit = this.keks.getCached(id);
    if (hit) return Promise.resolve(hit);
    return this.loadKek(id, tenantId, version);
  }

  /** A specific KEK version if cached and within its bounds (counting one use), else undefined: then call `kek`. */
  cachedKek(tenantId: string, version: number): TenantKek | undefined {
    return this.keks.getCached(cacheId(tenantId, 'kek', version));
  }

  private loadKek(id: string, tenantId: string, version: number): Promise<TenantKek> {
    return this.keks.get(id, async () => {
      const raw = await this.unwrap(tenantId, 'kek', version);
      try {
        return { tenantId, version, key: createSecretKey(raw) };
      } finally {
        raw.fill(0);
      }
    });
  }

  /** Creates the next KEK version and makes it current; data keys must then be rewrapped. Returns it. */
  async rotateKek(tenantId: string): Promise<number> {
    return this.rotate(tenantId, 'kek');
  }

  /** Blind-index keys of the current index-root version (version 1 created on first use). */
  currentIndexKeys(tenantId: string): Promise<BlindIndexKeys> {
    const current = this.knownCurrentVersion(tenantId, 'index');
    const hit = current === undefined ? undefined : this.indexes.getCached(current.cacheId);
    return hit ? Promise.resolve(hit) : this.currentVersion(tenantId, 'index').then((v) => this.indexKeys(tenantId, v));
  }

  /** Blind-index keys of a specific index-root version (lookups during a re-index consult two). */
  indexKeys(tenantId: string, version: number): Promise<BlindIndexKeys> {
    const id = cacheId(tenantId, 'index', version);
    const hit = this.indexes.getCached(id);
    if (hit) return Promise.resolve(hit);
    return this.indexes.get(id, async () => {
      const raw = await this.unwrap(tenantId, 'index', version);
      try {
        return deriveBlindIndexKeys(tenantId, version, raw);
      } finally {
        raw.fill(0);
      }
    });
  }

  /** Creates the next index-root version; a re-index job must follow. Returns the new version. */
  async rotateIndexRoot(tenantId: string): Promise<number> {
    return this.rotate(tenantId, 'index');
  }

  /** The tenant's suppression key (created on first use, never rotated). */
  async suppressionKey(tenantId: string): Promise<SuppressionKey> {
    return this.suppression.get(cacheId(tenantId, 'suppression', SUPPRESSION_VERSION), async () => {
      const stored =
        (await this.store.get(tenantId, 'suppression', SUPPRESSION_VERSION)) ??
        (await this.create(tenantId, 'suppression', SUPPRESSION_VERSION)).stored;
      const raw = await this.unwrapRecord(stored);
      try {
        return { tenantId, key: createSecretKey(raw) };
      } finally {
        raw.fill(0);
      }
    });
  }

  /** Cache counters summed over KEK, index and suppression caches (`loads` = KMS unwraps). */
  stats(): KeyHierarchyStats {
    const sum = { hits: 0, misses: 0, loads: 0, loadFailures: 0, expiredByAge: 0, expiredByUses: 0, size: 0 };
    for (const cache of [this.keks, this.indexes, this.suppression] as KeyCache<unknown>[]) {
      const stats = cache.stats();
      for (const key of Object.keys(sum) as (keyof KeyCacheStats)[]) sum[key] += stats[key];
    }
    return sum;
  }

  /** Forgets every plaintext key (e.g. on shutdown). */
  clear(): void {
    this.keks.clear();
    this.indexes.clear();
    this.suppression.clear();
    this.currentVersions.kek.clear();
    this.currentVersions.index.clear();
  }

  private knownCurrentVersion(tenantId: string, purpose: 'kek' | 'index'): CurrentVersion | undefined {
    const known = this.currentVersions[purpose].get(tenantId);
    return known && this.now() - known.at < this.maxAgeMs ? known : undefined;
  }

  private rememberCurrentVersion(tenantId: string, purpose: 'kek' | 'index', version: number): void {
    this.currentVersions[purpose].set(tenantId, {
      version,
      at: this.now(),
      cacheId: cacheId(tenantId, purpose, version),
    });
  }

  private async currentVersion(tenantId: string, purpose: 'kek' | 'index'): Promise<number> {
    assertId('tenantId', tenantId);
    const known = this.knownCurrentVersion(tenantId, purpose);
    if (known !== undefined) return known.version;
    const latest = await this.store.latest(tenantId, purpose);
    const version = latest ? latest.version : (await this.create(tenantId, purpose, 1)).stored.version;
    this.rememberCurrentVersion(tenantId, purpose, version);
    return version;
  }

  private async rotate(tenantId: string, purpose: 'kek' | 'index'): Promise<number> {
    assertId('tenantId', tenantId);
    const latest = await this.store.latest(tenantId, purpose);
    const { stored } = await this.create(tenantId, purpose, (latest?.version ?? 0) + 1);
    this.rememberCurrentVersion(tenantId, purpose, stored.version);
    return stored.version;
  }

  /** Generates, wraps and stores a key; primes the cache when our key won the insert. */
  private async create(
    tenantId: string,
    purpose: TenantKeyPurpose,
    version: number,
  ): Promise<{ stored: WrappedTenantKey }> {
    const kmsKeyId = this.kmsKeyIdFor(tenantId);
    const raw = randomBytes(32);
    try {
      const ciphertextBlob = await this.kms.encrypt(kmsKeyId, raw, kmsContext(tenantId, purpose, version));
      const candidate: WrappedTenantKey = {
        tenantId,
        purpose,
        version,
        kmsKeyId,
        ciphertextBlob,
        createdAt: new Date(),
      };
      const stored = await this.store.insert(candidate);
      if (Buffer.compare(Buffer.from(stored.ciphertextBlob), Buffer.from(ciphertextBlob)) === 0) {
        this.prime(tenantId, purpose, version, raw);
      }
      return { stored };
    } finally {
      raw.fill(0);
    }
  }

  private prime(tenantId: string, purpose: TenantKeyPurpose, version: number, raw: Buffer): void {
    const id = cacheId(tenantId, purpose, version);
    if (purpose === 'kek') this.keks.prime(id, { tenantId, version, key: createSecretKey(raw) });
    else if (purpose === 'index') this.indexes.prime(id, deriveBlindIndexKeys(tenantId, version, raw));
    else this.suppression.prime(id, { tenantId, key: createSecretKey(raw) });
  }

  private async unwrap(tenantId: string, purpose: TenantKeyPurpose, version: number): Promise<Buffer> {
    assertId('tenantId', tenantId);
    const stored = await this.store.get(tenantId, purpose, version);
    if (!stored) throw new KeyNotFoundError(`No ${purpose} key version ${version} for this tenant`);
    return this.unwrapRecord(stored);
  }

  private async unwrapRecord(stored: WrappedTenantKey): Promise<Buffer> {
    const plaintext = await this.kms.decrypt(
      stored.kmsKeyId,
      stored.ciphertextBlob,
      kmsContext(stored.tenantId, stored.purpose, stored.version),
    );
    const raw = Buffer.from(plaintext);
    plaintext.fill(0);
    if (raw.length !== 32) throw new KmsAccessDeniedError('KMS returned a key of the wrong length');
    return raw;
  }
}

/** The KMS encryption context of a tenant key: ids and codes only. */
export function kmsContext(tenantId: string, purpose: TenantKeyPurpose, version: number): EncryptionContext {
  // The suppression key is never rotated, so its context has no version (DESIGN).
  return purpose === 'suppression'
    ? { tenant: tenantId, purpose }
    : { tenant: tenantId, purpose, version: String(version) };
}

interface CurrentVersion {
  readonly version: number;
  readonly at: number;
  readonly cacheId: string;
}

function cacheId(tenantId: string, purpose: TenantKeyPurpose, version: number): string {
  return `${purpose}\u0000${tenantId}\u0000${version}`;
}
