/**
 * Wires the contact vault: contact store and (separate) key store from config, the KMS and key hierarchy, the
 * outbox relay under a lease, and the gRPC API behind mTLS and the access interceptor.
 */
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  DEFAULT_ACCESS_POLICY,
  createAccessInterceptor,
  createOperatorTokenVerifier,
  type AccessPolicy,
} from '@sealpost/access';
import { OutboxRelay, type ServiceBus } from '@sealpost/bus';
import type { KmsConfig, SealpostConfig, StoreConfig } from '@sealpost/config';
import {
  ContactCipher,
  KeyHierarchy,
  createKeyManagementService,
  kmsKeyIdResolver,
  type DataKeyStore,
  type KmsSettings,
  type TenantKeyStore,
} from '@sealpost/crypto';
import { vaultV1 } from '@sealpost/proto';
import { boundEndpoint, createGrpcServer, createIdempotency } from '@sealpost/server';
import {
  MongoIdempotencyStore,
  MongoLeaseStore,
  MongoWindowedCounterStore,
  SqliteIdempotencyStore,
  SqliteLeaseStore,
  SqliteWindowedCounterStore,
  WalCheckpointer,
  connectMongo,
  newLeaseHolderId,
  type IdempotencyStore,
  type LeaseStore,
  type WindowedCounterStore,
} from '@sealpost/storage';
import { errorCode, type Logger } from '@sealpost/telemetry';
import { BusAuditPublisher } from './adapters/bus/bus-audit-publisher';
import { createContactVaultHandlers } from './adapters/grpc/contact-vault-handlers';
import { grpcAuditProofsOf } from './adapters/grpc/grpc-audit-proofs';
import { VaultMetrics } from './adapters/grpc/vault-metrics';
import { OFFLINE_AUDIT_PROOFS } from './adapters/offline-audit-proofs';
import { MongoContactRepository } from './adapters/mongo/mongo-contact-repository';
import { ensureContactStore } from './adapters/mongo/mongo-contact-store';
import { MongoImportBatchWriter } from './adapters/mongo/mongo-import-batch-writer';
import { MongoIndexEntryRepository } from './adapters/mongo/mongo-index-entry-repository';
import {
  MongoDataKeyStore,
  MongoTenantKeyStore,
  ensureKeyStore,
  keyStoreDatabaseOf,
} from './adapters/mongo/mongo-key-store';
import { SqliteContactRepository } from './adapters/sqlite/sqlite-contact-repository';
import { openSqliteContactStore } from './adapters/sqlite/sqlite-contact-store';
import { WorkerRowPreparer } from './adapters/worker/worker-row-preparer';
import { SqliteImportBatchWriter } from './adapters/sqlite/sqlite-import-batch-writer';
import { SqliteIndexEntryRepository } from './adapters/sqlite/sqlite-index-entry-repository';
import {
  KEY_STORE_FILE_NAME,
  SqliteDataKeyStore,
  SqliteTenantKeyStore,
  openSqliteKeyStore,
} from './adapters/sqlite/sqlite-key-store';
import { MongoErasureRepository } from './adapters/mongo/mongo-erasure-repository';
import { MongoOperationRepository } from './adapters/mongo/mongo-operation-repository';
import { MongoKeyInventory } from './adapters/mongo/mongo-key-store';
import { openLocalReceiptSigner } from './adapters/signing/local-receipt-signer';
import { ReceiptSignerError, openKmsReceiptSigner } from './adapters/signing/kms-receipt-signer';
import { SqliteErasureRepository } from './adapters/sqlite/sqlite-erasure-repository';
import { SqliteKeyInventory } from './adapters/sqlite/sqlite-key-store';
import { SqliteOperationRepository } from './adapters/sqlite/sqlite-operation-repository';
import { StaticTenantPolicies } from './adapters/static-tenant-policies';
import type { EraseDeps } from './app/erase-contact';
import { RETENTION_LEASE, RetentionSchedule } from './app/retention-schedule';
import type { VaultDeps } from './app/vault-deps';
import { createSharedVaultQuotas } from './app/shared-vault-quotas';
import type { VaultQuotas } from './domain';
import type { ContactRepository } from './ports/contact-repository';
import type { ErasureRepository } from './ports/erasure-repository';
import type { ImportBatchWriter } from './ports/import-batch-writer';
import type { IndexEntryRepository } from './ports/index-entry-repository';
import type { KeyInventory } from './ports/key-inventory';
import type { OperationRepository } from './ports/operation-repository';
import type { ReceiptSigner } from './ports/receipt-signer';
import type { AuditPublisher } from './ports/audit-publisher';
import type { AuditProofs } from './ports/audit-proofs';
import type { TenantPolicies } from './ports/tenant-policies';

/** One lease for the contacts outbox, shared by every replica. */
export const CONTACT_OUTBOX_LEASE = 'outbox:contact-vault:contacts';
/** One lease for the operations outbox (key events), shared by every replica. */
export const OPERATION_OUTBOX_LEASE = 'outbox:contact-vault:operations';
/** How long UpsertContact remembers a request id. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/** Template of local-keyring key ids (embedded mode): one keyring key per tenant. */
export const LOCAL_KMS_KEY_TEMPLATE = 'local/sealpost-{tenant}';

export interface ContactVaultServiceOptions {
  readonly config: SealpostConfig;
  readonly bus: ServiceBus;
  readonly logger?: Logger;
  /** Per-tenant rules (default: email dedupe key, no folding, no default phone region). */
  readonly policies?: TenantPolicies;
  /** Outbox relay poll interval (default 500 ms). */
  readonly relayPollMs?: number;
  /** Access table (default: the seed table, `DEFAULT_ACCESS_POLICY`). */
  readonly accessPolicy?: AccessPolicy;
  /** Contacts per ResolveRecipients batch (default 100). */
  readonly resolveBatchSize?: number;
  /** Retention lease lifetime (default 30 s; tests shorten it). */
  readonly retentionLeaseTtlMs?: number;
}

export interface RunningContactVaultService {
  readonly endpoint: { readonly grpc: string; readonly health: string };
  /** Drains gRPC within `drainMs`, stops the outbox relay, forgets cached keys, closes both stores. */
  stop(drainMs: number): Promise<void>;
}

/** Repositories and key stores of one backend, with what closes them. */
export interface OpenedVaultStores {
  readonly contacts: ContactRepository;
  readonly indexEntries: IndexEntryRepository;
  readonly tenantKeys: TenantKeyStore;
  readonly dataKeys: DataKeyStore;
  readonly leases: LeaseStore;
  /** Request-id idempotency records, shared by every replica (they sit beside the contacts). */
  readonly idempotency: IdempotencyStore;
  /** Quota counters, shared by every replica. */
  readonly quotaCounters: WindowedCounterStore;
  readonly erasures: ErasureRepository;
  readonly operations: OperationRepository;
  readonly inventory: KeyInventory;
  /** Batched import writes; without it import goes row by row. */
  readonly importBatch?: ImportBatchWriter;
  close(): Promise<void>;
}

async function mongoUrl(config: Extract<StoreConfig, { kind: 'mongo' }>): Promise<string> {
  if (config.user === undefined || config.passwordFile === undefined) return config.url;
  const u = new URL(config.url);
  u.username = encodeURIComponent(config.user);
  u.password = encodeURIComponent((await readFile(config.passwordFile, 'utf8')).trim());
  return u.toString();
}

/**
 * Opens the contact store and the key store. SQLite: `<dataDir>/contact-vault.sqlite` and
 * `<dataDir>/contact-vault-keys.sqlite`, each checkpointed by a worker thread (see `WalCheckpointer`; `onError`
 * hears of its failures); MongoDB: the configured database and `<database>_keys`.
 */
export async function openVaultStores(
  config: SealpostConfig,
  options: { readonly onError?: (error: unknown, where: string) => void } = {},
): Promise<OpenedVaultStores> {
  const store = config.store;
  if (store.kind === 'sqlite') {
    mkdirSync(path.dirname(store.file), { recursive: true, mode: 0o700 });
    const contactDb = openSqliteContactStore(store.file);
    let keyDb;
    try {
      const keyFile =
        config.vault.keyStore.kind === 'sqlite'
          ? config.vault.keyStore.file
          : path.join(config.dataDir, KEY_STORE_FILE_NAME);
      mkdirSync(path.dirname(keyFile), { recursive: true, mode: 0o700 });
      keyDb = openSqliteKeyStore(keyFile);
    } catch (err) {
      contactDb.close();
      throw err;
    }
    // A bulk import's commits then only append to the WAL; the copy into the database file happens beside them.
    const checkpointers = [contactDb, keyDb].map((db) =>
      WalCheckpointer.start(db, db.name, { onError: (error) => options.onError?.(error, 'checkpoint') }),
    );
    return {
      contacts: new SqliteContactRepository(contactDb),
      indexEntries: new SqliteIndexEntryRepository(contactDb),
      tenantKeys: new SqliteTenantKeyStore(keyDb),
      dataKeys: new SqliteDataKeyStore(keyDb),
      leases: new SqliteLeaseStore(contactDb),
      idempotency: new SqliteIdempotencyStore(contactDb),
      quotaCounters: new SqliteWindowedCounterStore(contactDb),
      erasures: new SqliteErasureRepository(contactDb),
      operations: new SqliteOperationRepository(contactDb),
      inventory: new SqliteKeyInventory(keyDb),
      importBatch: new SqliteImportBatchWriter(contactDb, keyDb),
      async close() {
        await Promise.all(checkpointers.map((c) => c.stop()));
        contactDb.close();
        keyDb.close();
      },
    };
  }
  const url = await mongoUrl(store);
  const contactsHandle = await connectMongo({ url, database: store.database, appName: 'sealpost-contact-vault' });
  try {
    // The key store may live on another cluster with its own (short) backup retention.
    const ks = config.vault.keyStore;
    const keysHandle = await connectMongo({
      url: ks.kind === 'mongo' && ks.url !== undefined ? await mongoUrl({ ...store, url: ks.url }) : url,
      database: ks.kind === 'mongo' ? ks.database : keyStoreDatabaseOf(store.database),
      appName: 'sealpost-contact-vault-keys',
    });
    try {
      await ensureContactStore(contactsHandle.db);
      await ensureKeyStore(keysHandle.db);
    } catch (err) {
      await keysHandle.close();
      throw err;
    }
    return {
      contacts: new MongoContactRepository(contactsHandle.db),
      indexEntries: new MongoIndexEntryRepository(contactsHandle.db),
      tenantKeys: new MongoTenantKeyStore(keysHandle.db),
      dataKeys: new MongoDataKeyStore(keysHandle.db),
      leases: new MongoLeaseStore(contactsHandle.db),
      idempotency: new MongoIdempotencyStore(contactsHandle.db),
      quotaCounters: new MongoWindowedCounterStore(contactsHandle.db),
      erasures: new MongoErasureRepository(contactsHandle.db),
      operations: new MongoOperationRepository(contactsHandle.db),
      inventory: new MongoKeyInventory(keysHandle.db),
      importBatch: new MongoImportBatchWriter(contactsHandle.db, keysHandle.db),
      async close() {
        await contactsHandle.close();
        await keysHandle.close();
      },
    };
  } catch (err) {
    await contactsHandle.close();
    throw err;
  }
}

function kmsSettingsOf(kms: KmsConfig): { settings: KmsSettings; keyIdFor: (tenantId: string) => string } {
  if (kms.kind === 'local') {
    return {
      settings: { kind: 'local', keyringPath: kms.keyringFile },
      keyIdFor: kmsKeyIdResolver({ template: LOCAL_KMS_KEY_TEMPLATE }),
    };
  }
  return {
    settings: { kind: 'aws', region: kms.region, ...(kms.endpoint !== undefined ? { endpoint: kms.endpoint } : {}) },
    keyIdFor: kmsKeyIdResolver({
      ...(kms.keyIdTemplate !== undefined ? { template: kms.keyIdTemplate } : {}),
      ...(kms.keyMap !== undefined ? { map: kms.keyMap } : {}),
    }),
  };
}

/** Builds the use-case dependencies over opened stores and a KMS (also used by tests and, later, the CLI). */
export function createVaultDeps(options: {
  stores: OpenedVaultStores;
  keys: KeyHierarchy;
  policies?: TenantPolicies;
}): VaultDeps {
  return {
    contacts: options.stores.contacts,
    indexEntries: options.stores.indexEntries,
    keys: options.keys,
    cipher: new ContactCipher({ keys: options.keys, dataKeys: options.stores.dataKeys }),
    policies: options.policies ?? new StaticTenantPolicies(),
    inventory: options.stores.inventory,
    ...(options.stores.importBatch ? { importBatch: options.stores.importBatch } : {}),
  };
}

/** The contact use cases' deps plus what erasures need: the stores' leases, ledger and operations, audit, signer. */
function eraseDepsOf(
  deps: VaultDeps,
  stores: OpenedVaultStores,
  parts: { readonly audit: AuditPublisher; readonly auditProofs: AuditProofs; readonly signer: ReceiptSigner },
): EraseDeps {
  return { ...deps, ...parts, leases: stores.leases, erasures: stores.erasures, operations: stores.operations };
}

/** Per-tenant rules from configuration (one policy for every tenant for now). */
export function tenantPoliciesOf(config: SealpostConfig): TenantPolicies {
  return new StaticTenantPolicies({
    dedupeKey: config.vault.dedupeKey,
    normalization: {
      ...(config.vault.defaultPhoneRegion !== undefined ? { defaultRegion: config.vault.defaultPhoneRegion } : {}),
      ...(config.vault.emailFolding ? { foldEmailAliases: true } : {}),
    },
  });
}

/** Quotas from configuration, drawn from `counters` (shared by every replica that opens the same store). */
export function vaultQuotasOf(config: SealpostConfig, counters: WindowedCounterStore): VaultQuotas {
  const rule = (q: { limit: number; windowSeconds: number }) => ({ limit: q.limit, windowMs: q.windowSeconds * 1000 });
  const q = config.vault.quotas;
  return createSharedVaultQuotas(
    {
      reveal: rule(q.reveal),
      find: rule(q.find),
      resolve: rule(q.resolve),
      resolvePurpose: rule(q.resolvePurpose),
    },
    counters,
  );
}

/**
 * The receipt signer: the KMS key named by SEALPOST_VAULT_RECEIPT_SIGNING_KEY_ID (ES256, region/endpoint from the
 * KMS settings; its public key is fetched now, so a missing or wrong-spec key stops start-up), else in embedded
 * mode only the local Ed25519 file key. Production without a KMS key refuses to start (no file-key fallback).
 */
export async function openReceiptSigner(config: SealpostConfig): Promise<ReceiptSigner> {
  const keyId = config.vault.receiptSigningKeyId;
  if (keyId !== undefined) {
    if (config.kms.kind !== 'aws') {
      throw new ReceiptSignerError(
        'SEALPOST_VAULT_RECEIPT_SIGNING_KEY_ID names a KMS key, so it needs SEALPOST_KMS=aws',
      );
    }
    const { region, endpoint } = config.kms;
    return openKmsReceiptSigner({ keyId, region, ...(endpoint !== undefined ? { endpoint } : {}) });
  }
  return openLocalReceiptSigner({ dataDir: config.dataDir, mode: config.mode });
}

/** Everything the vault's maintenance tasks need (CLI: reapply-erasures, sweep), over opened stores. */
export interface VaultRuntime {
  readonly deps: EraseDeps;
  readonly stores: OpenedVaultStores;
  close(): Promise<void>;
}

/**
 * Opens stores, KMS and the signer from config for an offline maintenance task; `audit` publishes its events and
 * `auditProofs` (default: OFFLINE_AUDIT_PROOFS, which never dials the audit service) gives erasures their proofs.
 */
export async function openVaultRuntime(
  config: SealpostConfig,
  audit: AuditPublisher,
  auditProofs: AuditProofs = OFFLINE_AUDIT_PROOFS,
): Promise<VaultRuntime> {
  const { settings, keyIdFor } = kmsSettingsOf(config.kms);
  const kms = await createKeyManagementService({ mode: config.mode, kms: settings });
  const signer = await openReceiptSigner(config);
  const stores = await openVaultStores(config);
  const keys = new KeyHierarchy({ kms, kmsKeyIdFor: keyIdFor, tenantKeys: stores.tenantKeys });
  const deps = eraseDepsOf(createVaultDeps({ stores, keys, policies: tenantPoliciesOf(config) }), stores, {
    audit,
    auditProofs,
    signer,
  });
  return {
    deps,
    stores,
    async close() {
      keys.clear();
      await stores.close();
    },
  };
}

/**
 * The scheduled retention sweep (undefined without SEALPOST_VAULT_RETENTION_DAYS): the lease holder sweeps every
 * SEALPOST_VAULT_RETENTION_SWEEP_EVERY_SECONDS; each sweep logs its counts (tenant ids and numbers only) and counts
 * `sealpost_vault_retention_erased_total`.
 */
function retentionScheduleOf(
  config: SealpostConfig,
  options: {
    deps: EraseDeps;
    stores: OpenedVaultStores;
    metrics: VaultMetrics;
    report: (err: unknown, where: string) => void;
    logger?: Logger;
    leaseTtlMs?: number;
  },
): RetentionSchedule | undefined {
  const policy = config.vault.retention;
  if (policy.all === undefined && Object.keys(policy.tenants).length === 0) return undefined;
  return new RetentionSchedule({
    deps: options.deps,
    policy,
    tenants: () => options.stores.inventory.tenants(),
    leases: options.stores.leases,
    holder: newLeaseHolderId('contact-vault'),
    everyMs: config.vault.retentionSweepEverySeconds * 1000,
    ...(options.leaseTtlMs !== undefined ? { leaseTtlMs: options.leaseTtlMs } : {}),
    onLeaseHeld: (held) => options.metrics.lease(RETENTION_LEASE, held),
    onSwept: (report, elapsedMs) => {
      options.metrics.retentionSwept(report);
      const totals = { due: 0, erased: 0, failed: 0 };
      for (const t of Object.values(report.tenants)) {
        totals.due += t.due;
        totals.erased += t.erased;
        totals.failed += t.failed;
      }
      options.logger?.info({ ...totals, tenants: report.tenants, elapsedMs }, 'retention sweep');
    },
    onError: (err) => options.report(err, 'retention'),
  });
}

/** Starts the contact vault; resolves once gRPC serves. Start-up errors (stores, KMS, TLS) are thrown. */
export async function startContactVaultService(
  options: ContactVaultServiceOptions,
): Promise<RunningContactVaultService> {
  const { config, bus, logger } = options;
  const verifier = await createOperatorTokenVerifier({
    mode: config.mode,
    issuer: config.auth.jwtIssuer,
    audience: config.auth.jwtAudience,
    jwks: config.auth.jwks.kind === 'url' ? { url: config.auth.jwks.url } : { file: config.auth.jwks.file },
  });
  const { settings, keyIdFor } = kmsSettingsOf(config.kms);
  const kms = await createKeyManagementService({ mode: config.mode, kms: settings });

  const signer = await openReceiptSigner(config);
  const stores = await openVaultStores(config, {
    onError: (err, where) => logger?.warn({ where, code: errorCode(err) }, 'contact vault error'),
  });
  const keys = new KeyHierarchy({ kms, kmsKeyIdFor: keyIdFor, tenantKeys: stores.tenantKeys });
  const cleanups: (() => Promise<void>)[] = [() => stores.close(), async () => keys.clear()];
  const unwind = async (): Promise<void> => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  };
  try {
    await bus.ensureStreams();
    const report = (err: unknown, where: string): void => {
      logger?.warn({ where, code: errorCode(err) }, 'contact vault error');
    };
    // Bulk imports prepare their next batch on a worker thread while the current one is written.
    const rowPreparer = new WorkerRowPreparer((err) => report(err, 'row-preparer'));
    cleanups.push(() => rowPreparer.close());
    const deps: VaultDeps = {
      ...createVaultDeps({ stores, keys, policies: options.policies ?? tenantPoliciesOf(config) }),
      rowPreparer,
    };
    // Erasure receipts cite the audit entry's signed inclusion proof, asked of the audit service (dialled lazily).
    const auditProofs = grpcAuditProofsOf(config);
    cleanups.push(async () => auditProofs.close());

    const relay = new OutboxRelay({
      source: stores.contacts.outbox(),
      publisher: bus,
      leases: stores.leases,
      leaseName: CONTACT_OUTBOX_LEASE,
      holder: newLeaseHolderId('contact-vault'),
      // An import leaves thousands of contacts with one pending event each: a scan of 1,000 makes each batch one
      // bus commit and one outbox commit for up to 1,000 events (each commit is an fsync on SQLite).
      batch: 1000,
      ...(options.relayPollMs !== undefined ? { pollIntervalMs: options.relayPollMs } : {}),
      onError: report,
    });
    relay.start();
    cleanups.push(() => relay.stop());
    // Key events wait in their operation's outbox; relayed like contact events, under their own lease.
    const operationRelay = new OutboxRelay({
      source: stores.operations.outbox(),
      publisher: bus,
      leases: stores.leases,
      leaseName: OPERATION_OUTBOX_LEASE,
      holder: newLeaseHolderId('contact-vault'),
      ...(options.relayPollMs !== undefined ? { pollIntervalMs: options.relayPollMs } : {}),
      onError: report,
    });
    operationRelay.start();
    cleanups.push(() => operationRelay.stop());

    const eraseDeps = eraseDepsOf(deps, stores, { audit: new BusAuditPublisher(bus), auditProofs, signer });
    const metrics = new VaultMetrics();
    const retention = retentionScheduleOf(config, {
      deps: eraseDeps,
      stores,
      metrics,
      report,
      ...(logger ? { logger } : {}),
      ...(options.retentionLeaseTtlMs !== undefined ? { leaseTtlMs: options.retentionLeaseTtlMs } : {}),
    });
    retention?.start();
    if (retention) cleanups.push(() => retention.stop(0));

    const server = await createGrpcServer({
      service: 'contact-vault',
      mode: config.mode,
      address: config.grpc.listen,
      tls: { caFile: config.tls.caFile, certFile: config.tls.certFile, keyFile: config.tls.keyFile },
      health: { address: config.grpc.health },
      interceptors: [
        createAccessInterceptor({
          policy: options.accessPolicy ?? DEFAULT_ACCESS_POLICY,
          trustDomain: config.trustDomain,
          // csi-driver-spiffe ids (spiffe://<td>/ns/<namespace>/sa/<service>) are accepted from this namespace only.
          spiffeNamespace: config.spiffeNamespace,
          verifier,
          stepUpWindowSeconds: config.auth.stepUpWindowSeconds,
          purposes: { codes: config.purposes.codes, ticketPattern: config.purposes.ticketPattern },
        }),
      ],
      reflection: { protoFiles: ['sealpost/vault/v1/contact_vault.proto'] },
    });
    server.addService(
      vaultV1.ContactVaultService,
      createContactVaultHandlers({
        ...eraseDeps,
        metrics,
        idempotency: createIdempotency({
          store: stores.idempotency,
          ttlMs: IDEMPOTENCY_TTL_MS,
          onStoreError: (err) => report(err, 'idempotency'),
        }),
        quotas: vaultQuotasOf(config, stores.quotaCounters),
        inventory: stores.inventory,
        importBatchRows: config.vault.importBatchRows,
        ...(options.resolveBatchSize !== undefined ? { resolveBatchSize: options.resolveBatchSize } : {}),
      }),
    );
    const ports = await server.start();
    cleanups.push(async () => server.forceShutdown());
    const endpoint = boundEndpoint(config.grpc, ports);
    logger?.info({ endpoint }, 'contact vault serving');

    let stopping: Promise<void> | undefined;
    return {
      endpoint,
      stop(drainMs) {
        stopping ??= (async () => {
          cleanups.splice(0);
          await server.drain(drainMs);
          await retention?.stop();
          auditProofs.close();
          await relay.stop();
          await operationRelay.stop();
          await rowPreparer.close();
          keys.clear();
          await stores.close();
        })();
        return stopping;
      },
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}
