/**
 * Wires the audit service: store and lease store from config, the appender (single writer, fenced), the tree-head
 * schedule with its signer and witness, and the gRPC read API behind mTLS and the access interceptor.
 */
import { readFile } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { KMSClient } from '@aws-sdk/client-kms';
import { DEFAULT_ACCESS_POLICY, createAccessInterceptor, createOperatorTokenVerifier } from '@sealpost/access';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { type ServiceBus, createEnvelope, treeHeadSubject } from '@sealpost/bus';
import type { SealpostConfig, StoreConfig } from '@sealpost/config';
import { auditEventsV1, auditV1 } from '@sealpost/proto';
import { boundEndpoint, createGrpcServer } from '@sealpost/server';
import { type LeaseStore, MongoLeaseStore, SqliteLeaseStore, connectMongo, newLeaseHolderId } from '@sealpost/storage';
import { errorCode, type Logger } from '@sealpost/telemetry';
import { createAuditLogHandlers } from './adapters/grpc/audit-log-handlers';
import { MongoAuditLogStore } from './adapters/mongo/mongo-audit-log-store';
import { KmsEs256Signer } from './adapters/signing/kms-es256-signer';
import { LocalEd25519Signer } from './adapters/signing/local-ed25519-signer';
import { SqliteAuditLogStore } from './adapters/sqlite/sqlite-audit-log-store';
import { FileWitness, readTreeHeadFile } from './adapters/witness/file-witness';
import { AUDIT_APPENDER_LEASE, AuditAppender } from './app/append-entries';
import { AuditMetrics } from './app/audit-metrics';
import { RetentionSchedule } from './app/retention-schedule';
import { type TreeHeadPublisher, TreeHeadSchedule } from './app/sign-tree-head';
import type { PruneAuditLogResult } from './app/verify';
import type { AuditLogStore, StoredTreeHead } from './ports/audit-log-store';
import type { TreeHeadSigner } from './ports/tree-head-signer';

/** The log id in every signed tree head (a subject token: `sealpost.treehead.<logId>.signed`). */
export const AUDIT_LOG_ID = 'sealpost-audit';

export type AuditServiceErrorCode = 'AUDIT_SIGNER_NOT_CONFIGURED';

/** The audit service cannot start with this configuration. */
export class AuditServiceError extends Error {
  override readonly name = 'AuditServiceError';
  constructor(
    readonly code: AuditServiceErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface AuditServiceOptions {
  readonly config: SealpostConfig;
  readonly bus: ServiceBus;
  readonly logger?: Logger;
  /** Tree-head signing cadence; overrides `config.audit` (SEALPOST_AUDIT_STH_EVERY_ENTRIES / _SECONDS). */
  readonly treeHeads?: { readonly everyEntries?: number; readonly everyMs?: number };
  /** Retention overrides (tests): the period defaults to SEALPOST_AUDIT_RETENTION_DAYS, the cadence to hourly. */
  readonly retention?: {
    readonly retentionDays?: number;
    readonly everyMs?: number;
    readonly now?: () => number;
    readonly onPruned?: (result: PruneAuditLogResult) => void;
  };
}

/** Event type of a published signed tree head. */
export const TREE_HEAD_EVENT_TYPE = 'audit.tree_head_signed';

/**
 * Publishes each signed head as `TreeHeadSigned` on `sealpost.treehead.<logId>.signed`. The event id comes from the
 * JWS, so re-publishing the same head is deduplicated by the bus; the tree size orders the heads (aggregate version).
 */
export function treeHeadPublisher(bus: ServiceBus): TreeHeadPublisher {
  return async (head: StoredTreeHead) => {
    await bus.publish(
      createEnvelope({
        id: `sth-${createHash('sha256').update(head.jws).digest('hex').slice(0, 48)}`,
        type: TREE_HEAD_EVENT_TYPE,
        subject: treeHeadSubject(head.logId),
        tenant: head.logId,
        aggregateId: head.logId,
        aggregateVersion: head.treeSize + 1,
        occurredAt: new Date(head.timestamp),
        payload: auditEventsV1.TreeHeadSigned.encode({
          logId: head.logId,
          treeSize: String(head.treeSize),
          rootHash: Buffer.from(head.rootHash, 'hex'),
          timestamp: new Date(head.timestamp),
          jws: head.jws,
          kid: head.kid,
        }).finish(),
      }),
    );
  };
}

export interface RunningAuditService {
  readonly endpoint: { readonly grpc: string; readonly health: string };
  /** Drains gRPC within `drainMs`, stops signing and appending, closes the store. */
  stop(drainMs: number): Promise<void>;
}

interface OpenedStore {
  readonly store: AuditLogStore;
  readonly leases: LeaseStore;
}

async function openStore(config: StoreConfig, onError: (error: unknown) => void): Promise<OpenedStore> {
  if (config.kind === 'sqlite') {
    mkdirSync(path.dirname(config.file), { recursive: true });
    const store = SqliteAuditLogStore.open(config.file, { onError });
    // Same database: the lease and the log it fences commit on one SQLite file.
    return { store, leases: new SqliteLeaseStore(store.db) };
  }
  let url = config.url;
  if (config.user !== undefined && config.passwordFile !== undefined) {
    const u = new URL(config.url);
    u.username = encodeURIComponent(config.user);
    u.password = encodeURIComponent((await readFile(config.passwordFile, 'utf8')).trim());
    url = u.toString();
  }
  const mongo = await connectMongo({ url, database: config.database, appName: 'sealpost-audit' });
  try {
    const store = await MongoAuditLogStore.open(mongo.db, () => mongo.close());
    return { store, leases: new MongoLeaseStore(mongo.db) };
  } catch (err) {
    await mongo.close();
    throw err;
  }
}

/**
 * The tree-head signer: the KMS key named by SEALPOST_AUDIT_SIGNING_KEY_ID (ES256; region and endpoint from the KMS
 * settings, credentials from the AWS SDK's default chain, i.e. IRSA in Kubernetes), else in embedded mode only a
 * local Ed25519 file key under the data dir. The public key is fetched at start-up, so a wrong key id, a key of
 * the wrong spec or missing permissions stop the start instead of the first signing.
 */
async function openSigner(config: SealpostConfig): Promise<TreeHeadSigner> {
  const keyId = config.audit.signingKeyId;
  if (keyId !== undefined) {
    if (config.kms.kind !== 'aws') {
      throw new AuditServiceError(
        'AUDIT_SIGNER_NOT_CONFIGURED',
        'SEALPOST_AUDIT_SIGNING_KEY_ID needs SEALPOST_KMS=aws',
      );
    }
    const client = new KMSClient({
      region: config.kms.region,
      ...(config.kms.endpoint !== undefined ? { endpoint: config.kms.endpoint } : {}),
      maxAttempts: 3,
    });
    const signer = new KmsEs256Signer(client, keyId);
    try {
      await signer.publicJwk();
    } catch (cause) {
      client.destroy();
      throw new AuditServiceError(
        'AUDIT_SIGNER_NOT_CONFIGURED',
        'the tree-head signing key (SEALPOST_AUDIT_SIGNING_KEY_ID) is not a usable ECC_NIST_P256 KMS key',
        { cause },
      );
    }
    return signer;
  }
  if (config.mode === 'production') {
    // loadConfig already refuses this; kept so that a hand-built config cannot downgrade to a file key.
    throw new AuditServiceError(
      'AUDIT_SIGNER_NOT_CONFIGURED',
      'production signs tree heads with a KMS key (SEALPOST_AUDIT_SIGNING_KEY_ID); the local Ed25519 file key is refused',
    );
  }
  return LocalEd25519Signer.fromFile(path.join(config.dataDir, 'audit', 'sth-signing.jwk.json'));
}

/** Starts the audit service; resolves once gRPC serves. Throws AuditServiceError, ConfigError-like start-up errors. */
export async function startAuditService(options: AuditServiceOptions): Promise<RunningAuditService> {
  const { config, bus, logger } = options;
  const signer = await openSigner(config);
  const verifier = await createOperatorTokenVerifier({
    mode: config.mode,
    issuer: config.auth.jwtIssuer,
    audience: config.auth.jwtAudience,
    jwks: config.auth.jwks.kind === 'url' ? { url: config.auth.jwks.url } : { file: config.auth.jwks.file },
  });

  const { store, leases } = await openStore(config.store, (err) =>
    logger?.warn({ where: 'checkpoint', code: errorCode(err) }, 'audit service error'),
  );
  const cleanups: (() => Promise<void>)[] = [() => store.close()];
  const unwind = async (): Promise<void> => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  };
  try {
    await bus.ensureStreams();
    const report = (err: unknown, where: string): void => {
      logger?.warn({ where, code: errorCode(err) }, 'audit service error');
    };

    const metrics = new AuditMetrics(AUDIT_APPENDER_LEASE);
    const schedule = new TreeHeadSchedule({
      store,
      signer,
      metrics,
      witness: new FileWitness(config.audit.witnessFile),
      logId: AUDIT_LOG_ID,
      publish: treeHeadPublisher(bus),
      everyEntries: options.treeHeads?.everyEntries ?? config.audit.sthEveryEntries,
      everyMs: options.treeHeads?.everyMs ?? config.audit.sthEverySeconds * 1000,
      onError: (err) => report(err, 'sign-tree-head'),
    });
    const appender = new AuditAppender({
      store,
      leaseStore: leases,
      holder: newLeaseHolderId('audit'),
      bus,
      onAppended: () => schedule.noteAppended(),
      onError: report,
      metrics,
    });
    appender.start();
    cleanups.push(() => appender.stop());
    // A head at start-up: readers get one at once, and it proves the restarted log still has the same root.
    await schedule.signNow();
    schedule.start();
    cleanups.push(() => schedule.stop());

    const retentionDays = options.retention?.retentionDays ?? config.audit.retentionDays;
    const retention =
      retentionDays === undefined
        ? undefined
        : new RetentionSchedule({
            store,
            retentionDays,
            ...(options.retention?.everyMs !== undefined ? { everyMs: options.retention.everyMs } : {}),
            ...(options.retention?.now ? { now: options.retention.now } : {}),
            // Pruning writes the log, so only the writer prunes: the instance holding the appender lease.
            isLeader: () => appender.activeWriter !== undefined,
            publicKeys: async () => [await signer.publicJwk()],
            // The witness pins the newest head from outside the database, as `audit verify` does by default.
            trustedSth: async () =>
              existsSync(config.audit.witnessFile) ? readTreeHeadFile(config.audit.witnessFile) : undefined,
            onPruned: (r) => {
              if (r.entriesPruned > 0)
                logger?.info({ prunedBefore: r.prunedBefore, entries: r.entriesPruned }, 'audit log pruned');
              options.retention?.onPruned?.(r);
            },
            onError: (err) => report(err, 'retention'),
          });
    retention?.start();
    if (retention) cleanups.push(() => retention.stop());

    const server = await createGrpcServer({
      service: 'audit',
      mode: config.mode,
      address: config.grpc.listen,
      tls: { caFile: config.tls.caFile, certFile: config.tls.certFile, keyFile: config.tls.keyFile },
      health: { address: config.grpc.health },
      interceptors: [
        createAccessInterceptor({
          policy: DEFAULT_ACCESS_POLICY,
          trustDomain: config.trustDomain,
          // csi-driver-spiffe ids (spiffe://<td>/ns/<namespace>/sa/<service>) are accepted from this namespace only.
          spiffeNamespace: config.spiffeNamespace,
          verifier,
          stepUpWindowSeconds: config.auth.stepUpWindowSeconds,
        }),
      ],
      reflection: { protoFiles: ['sealpost/audit/v1/audit_log.proto'] },
    });
    server.addService(auditV1.AuditLogService, createAuditLogHandlers({ store }));
    const ports = await server.start();
    cleanups.push(async () => server.forceShutdown());
    const endpoint = boundEndpoint(config.grpc, ports);
    logger?.info({ endpoint }, 'audit service serving');

    let stopping: Promise<void> | undefined;
    return {
      endpoint,
      stop(drainMs) {
        stopping ??= (async () => {
          cleanups.splice(0);
          await server.drain(drainMs);
          await retention?.stop();
          await schedule.stop();
          await appender.stop();
          await store.close();
        })();
        return stopping;
      },
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}
