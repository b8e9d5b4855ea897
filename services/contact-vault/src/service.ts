/**
 * Wires the contact vault: contact store and (separate) key store from config, the KMS and key hierarchy, the
 * outbox relay under a lease, and the gRPC API behind mTLS and the access interceptor.
 */
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_ACCESS_POLICY, createAccessInterceptor, createOperatorTokenVerifier } from '@sealpost/access';
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
import { MemoryIdempotencyStore, createGrpcServer, createIdempotency } from '@sealpost/server';
import { MongoLeaseStore, SqliteLeaseStore, connectMongo, newLeaseHolderId, type LeaseStore } from '@sealpost/storage';
import type { Logger } from '@sealpost/telemetry';
import { BusAuditPublisher } from './adapters/bus/bus-audit-publisher';
import { createContactVaultHandlers } from './adapters/grpc/contact-vault-handlers';
import { MongoContactRepository } from './adapters/mongo/mongo-contact-repository';
import { ensureContactStore } from './adapters/mongo/mongo-contact-store';
import { MongoIndexEntryRepository } from './adapters/mongo/mongo-index-entry-repository';
import {
  MongoDataKeyStore,
  MongoTenantKeyStore,
  ensureKeyStore,
  keyStoreDatabaseOf,
} from './adapters/mongo/mongo-key-store';
import { SqliteContactRepository } from './adapters/sqlite/sqlite-contact-repository';
import { openSqliteContactStore } from './adapters/sqlite/sqlite-contact-store';
import { SqliteIndexEntryRepository } from './adapters/sqlite/sqlite-index-entry-repository';
import {
  KEY_STORE_FILE_NAME,
  SqliteDataKeyStore,
  SqliteTenantKeyStore,
  openSqliteKeyStore,
} from './adapters/sqlite/sqlite-key-store';
import { StaticTenantPolicies } from './adapters/static-tenant-policies';
import type { VaultDeps } from './app/vault-deps';
import type { ContactRepository } from './ports/contact-repository';
import type { IndexEntryRepository } from './ports/index-entry-repository';
import type { TenantPolicies } from './ports/tenant-policies';

/** One lease for the contacts outbox, shared by every replica. */
export const CONTACT_OUTBOX_LEASE = 'outbox:contact-vault:contacts';
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
 * `<dataDir>/contact-vault-keys.sqlite`; MongoDB: the configured database and `<database>_keys`.
 */
export async function openVaultStores(config: SealpostConfig): Promise<OpenedVaultStores> {
  const store = config.store;
  if (store.kind === 'sqlite') {
    mkdirSync(path.dirname(store.file), { recursive: true, mode: 0o700 });
    const contactDb = openSqliteContactStore(store.file);
    let keyDb;
    try {
      keyDb = openSqliteKeyStore(path.join(config.dataDir, KEY_STORE_FILE_NAME));
    } catch (err) {
      contactDb.close();
      throw err;
    }
    return {
      contacts: new SqliteContactRepository(contactDb),
      indexEntries: new SqliteIndexEntryRepository(contactDb),
      tenantKeys: new SqliteTenantKeyStore(keyDb),
      dataKeys: new SqliteDataKeyStore(keyDb),
      leases: new SqliteLeaseStore(contactDb),
      async close() {
        contactDb.close();
        keyDb.close();
      },
    };
  }
  const url = await mongoUrl(store);
  const contactsHandle = await connectMongo({ url, database: store.database, appName: 'sealpost-contact-vault' });
  try {
    // TODO(config): SEALPOST_VAULT_KEYSTORE_MONGO_URL / _DATABASE so the key store can live on another cluster
    // with its own (short) backup retention; until then it is `<database>_keys` on the same server.
    const keysHandle = await connectMongo({
      url,
      database: keyStoreDatabaseOf(store.database),
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
  };
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

  const stores = await openVaultStores(config);
  const keys = new KeyHierarchy({ kms, kmsKeyIdFor: keyIdFor, tenantKeys: stores.tenantKeys });
  const cleanups: (() => Promise<void>)[] = [() => stores.close(), async () => keys.clear()];
  const unwind = async (): Promise<void> => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  };
  try {
    await bus.ensureStreams();
    const report = (err: unknown, where: string): void => {
      const code = err instanceof Error ? String((err as { code?: unknown }).code ?? err.name) : 'error';
      logger?.warn({ where, code }, 'contact vault error');
    };
    const deps = createVaultDeps({ stores, keys, ...(options.policies ? { policies: options.policies } : {}) });

    const relay = new OutboxRelay({
      source: stores.contacts.outbox(),
      publisher: bus,
      leases: stores.leases,
      leaseName: CONTACT_OUTBOX_LEASE,
      holder: newLeaseHolderId('contact-vault'),
      ...(options.relayPollMs !== undefined ? { pollIntervalMs: options.relayPollMs } : {}),
      onError: report,
    });
    relay.start();
    cleanups.push(() => relay.stop());

    const server = await createGrpcServer({
      service: 'contact-vault',
      mode: config.mode,
      address: config.grpc.listen,
      tls: { caFile: config.tls.caFile, certFile: config.tls.certFile, keyFile: config.tls.keyFile },
      health: { address: config.grpc.health },
      interceptors: [
        createAccessInterceptor({
          policy: DEFAULT_ACCESS_POLICY,
          trustDomain: config.trustDomain,
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
        ...deps,
        audit: new BusAuditPublisher(bus),
        idempotency: createIdempotency({ store: new MemoryIdempotencyStore(), ttlMs: IDEMPOTENCY_TTL_MS }),
      }),
    );
    const ports = await server.start();
    cleanups.push(async () => server.forceShutdown());
    const host = (address: string): string => address.slice(0, address.lastIndexOf(':'));
    const endpoint = {
      grpc: `${host(config.grpc.listen)}:${ports.port}`,
      health: `${host(config.grpc.health)}:${ports.healthPort ?? ''}`,
    };
    logger?.info({ endpoint }, 'contact vault serving');

    let stopping: Promise<void> | undefined;
    return {
      endpoint,
      stop(drainMs) {
        stopping ??= (async () => {
          cleanups.splice(0);
          await server.drain(drainMs);
          await relay.stop();
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
