import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import type { JWK } from 'jose';
import {
  type AuditLogStore,
  type AuditVerifyResult,
  AuditVerifyError,
  LocalEd25519Signer,
  type StoredTreeHead,
  type VerifyProgress,
  openAuditLogStore,
  proveEntry,
  pruneAuditLog,
  readTreeHeadFile,
  verifyAuditLog,
} from '@sealpost/audit';
import { type SealpostConfig, loadConfig } from '@sealpost/config';

/** Exit codes of the audit commands: 0 verified / done, 1 a problem was found, 2 usage or configuration error. */
const EXIT_PROBLEM = 1;
const EXIT_USAGE = 2;

/** A usage or configuration error: exit code 2. */
class UsageError extends Error {
  readonly code = 'AUDIT_CLI_USAGE';
}

interface CommonOptions {
  dataDir?: string;
  jwks?: string;
}

function config(options: CommonOptions): SealpostConfig {
  const env = options.dataDir ? { ...process.env, SEALPOST_DATA_DIR: path.resolve(options.dataDir) } : process.env;
  try {
    return loadConfig('audit', env);
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

/** Where the embedded audit service keeps its Ed25519 tree-head key (see services/audit/src/service.ts). */
function localKeyFile(c: SealpostConfig): string {
  return path.join(c.dataDir, 'audit', 'sth-signing.jwk.json');
}

async function publicKeys(c: SealpostConfig, options: CommonOptions): Promise<JWK[]> {
  if (options.jwks) {
    let doc: unknown;
    try {
      doc = JSON.parse(fs.readFileSync(options.jwks, 'utf8'));
    } catch {
      throw new UsageError(`--jwks ${options.jwks} is not a readable JSON file`);
    }
    const keys = Array.isArray(doc) ? doc : (doc as { keys?: unknown })?.keys;
    if (!Array.isArray(keys) || keys.length === 0) throw new UsageError(`--jwks ${options.jwks} holds no keys`);
    return keys as JWK[];
  }
  if (c.mode === 'production' || c.audit.signingKeyId !== undefined) {
    throw new UsageError('tree heads are signed by a KMS key here: pass its published JWKS with --jwks FILE');
  }
  const file = localKeyFile(c);
  if (!fs.existsSync(file)) {
    throw new UsageError(`no tree-head key at ${file} (has the audit service run?); pass --jwks FILE`);
  }
  return [await LocalEd25519Signer.publicJwkFromFile(file)];
}

function trustedHead(c: SealpostConfig, file: string | undefined): { head?: StoredTreeHead; from?: string } {
  const source = file ?? (fs.existsSync(c.audit.witnessFile) ? c.audit.witnessFile : undefined);
  if (source === undefined) return {};
  try {
    return { head: readTreeHeadFile(source), from: source };
  } catch {
    throw new UsageError(`${source} holds no tree head`);
  }
}

async function openStore(c: SealpostConfig): Promise<AuditLogStore> {
  if (c.store.kind === 'sqlite' && !fs.existsSync(c.store.file)) {
    throw new UsageError(`no audit log at ${c.store.file}`);
  }
  try {
    return await openAuditLogStore(c.store, 'sealpost-cli');
  } catch (err) {
    throw new UsageError(`cannot open the audit store: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Progress on stderr at most once a second: long verifications show they are moving. */
function progressPrinter(): (p: VerifyProgress) => void {
  let last = Date.now();
  return (p) => {
    const now = Date.now();
    if (now - last < 1000 && p.verified < p.total) return;
    last = now;
    const rate = p.elapsedMs > 0 ? Math.round((p.verified / p.elapsedMs) * 1000) : 0;
    process.stderr.write(`verified ${p.verified}/${p.total} entries (${rate} entries/s)\n`);
  };
}

function verdict(r: AuditVerifyResult, pinnedFrom: string | undefined): string {
  const pinned =
    r.pinnedSize !== undefined ? `, pinned head of size ${r.pinnedSize} from ${pinnedFrom}` : ', no pinned head';
  const pruned =
    r.prunedBefore > 0 ? `, entries before ${r.prunedBefore} pruned (checked through their tree nodes)` : '';
  if (r.ok) {
    const unsigned =
      r.unsignedFrom !== undefined ? `; entries from ${r.unsignedFrom} are not signed by a head yet` : '';
    return (
      `audit log OK: ${r.treeSize} entries, root ${r.rootHash}, ${r.headsSigned} signed heads, ` +
      `${r.headsChecked} head checks passed${pinned}${pruned}${unsigned}\n`
    );
  }
  const where =
    r.index !== undefined
      ? r.rangeEnd !== undefined
        ? ` in entries [${r.index}, ${r.rangeEnd})`
        : ` at index ${r.index}`
      : r.treeSize !== undefined
        ? ` at tree size ${r.treeSize}`
        : '';
  return `audit log PROBLEM: ${r.problem}${where}: ${r.detail}${pinned}${pruned}\n`;
}

function parseDate(value: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isSafeInteger(ms) || ms < 0) throw new UsageError('--before must be an ISO date or epoch milliseconds');
  return ms;
}

/** Commander's own usage errors (missing option, unknown flag) exit 2 too; --help exits 0. */
function exitCodes(cmd: Command): Command {
  return cmd.exitOverride((err: CommanderError) => {
    process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
  });
}

/** Runs an action; usage/config errors exit 2, audit refusals (not found, not signed, bad proof) exit 1. */
function guarded<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      if (err instanceof UsageError) {
        process.stderr.write(`sealpost audit: ${err.message}\n`);
        process.exitCode = EXIT_USAGE;
        return;
      }
      if (err instanceof AuditVerifyError) {
        process.stderr.write(`sealpost audit: ${err.code}: ${err.message}\n`);
        process.exitCode = err.code === 'INVALID_ARGUMENT' ? EXIT_USAGE : EXIT_PROBLEM;
        return;
      }
      throw err;
    }
  };
}

const withStore = async <T>(c: SealpostConfig, fn: (store: AuditLogStore) => Promise<T>): Promise<T> => {
  const store = await openStore(c);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
};

/** `sealpost audit …`: verify the tamper-evident log, prove entries, publish the key, apply retention. */
export function auditCommand(): Command {
  const audit = new Command('audit').description(
    'Verify the tamper-evident audit log, print inclusion proofs and the public key, prune old entries',
  );
  const common = (cmd: Command): Command =>
    exitCodes(
      cmd
        .option('--data-dir <dir>', 'data directory (default: SEALPOST_DATA_DIR or ./.sealpost)')
        .option('--jwks <file>', 'public keys of the tree-head signer (default: the embedded local key)'),
    );

  common(
    audit
      .command('verify')
      .description(
        'Recompute the log from its entries; check every signed tree head, their consistency and the pinned head. ' +
          'Exit 0: verified, 1: a problem (first bad index and what is wrong), 2: usage or configuration error',
      )
      .option(
        '--trusted-sth <file>',
        'pinned head: a JSON head or a witness JSON-lines file (default: the witness file)',
      )
      .option('--json', 'print the result as JSON'),
  ).action(
    guarded(async (options: CommonOptions & { trustedSth?: string; json?: boolean }) => {
      const c = config(options);
      const keys = await publicKeys(c, options);
      const { head, from } = trustedHead(c, options.trustedSth);
      const result = await withStore(c, (store) =>
        verifyAuditLog({
          store,
          publicKeys: keys,
          ...(head ? { trustedSth: head } : {}),
          onProgress: progressPrinter(),
        }),
      );
      process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : verdict(result, from));
      process.exitCode = result.ok ? 0 : EXIT_PROBLEM;
    }),
  );

  common(
    audit
      .command('prove')
      .description('Print the inclusion proof of an entry plus the signed tree head it verifies against (JSON)')
      .requiredOption('--entry <id>', 'entry id (the audit event id)')
      .option('--size <n>', 'prove against the newest signed head of this size (default: the newest head)')
      .option('--out <file>', 'write the JSON to this file instead of stdout'),
  ).action(
    guarded(async (options: CommonOptions & { entry: string; size?: string; out?: string }) => {
      const c = config(options);
      const size = options.size !== undefined ? Number(options.size) : undefined;
      if (size !== undefined && !Number.isSafeInteger(size)) throw new UsageError('--size must be a whole number');
      const keys = await publicKeys(c, options);
      const bundle = await withStore(c, (store) =>
        proveEntry({
          store,
          entryId: options.entry,
          publicKeys: keys,
          ...(size !== undefined ? { treeSize: size } : {}),
        }),
      );
      const json = `${JSON.stringify(bundle, null, 2)}\n`;
      if (options.out) {
        fs.writeFileSync(options.out, json);
        process.stderr.write(`wrote ${options.out} (leaf ${bundle.leafIndex} of ${bundle.treeSize})\n`);
      } else process.stdout.write(json);
    }),
  );

  common(
    audit
      .command('public-key')
      .description('Print the tree-head signing public keys as a JWKS, to give to an outside verifier'),
  ).action(
    guarded(async (options: CommonOptions) => {
      const keys = await publicKeys(config(options), options);
      process.stdout.write(`${JSON.stringify({ keys }, null, 2)}\n`);
    }),
  );

  common(
    audit
      .command('prune')
      .description(
        'Retention: remove the bytes of the oldest entries (those before --before, never past the newest signed head), ' +
          'keeping their tree nodes so the rest still verifies. Verifies the whole log first and refuses if it fails',
      )
      .requiredOption('--before <date>', 'prune entries that occurred before this ISO date (or epoch ms)')
      .option('--trusted-sth <file>', 'pinned head for the verification run (default: the witness file)')
      .option('--dry-run', 'only report what would be pruned'),
  ).action(
    guarded(async (options: CommonOptions & { before: string; trustedSth?: string; dryRun?: boolean }) => {
      const c = config(options);
      const before = parseDate(options.before);
      const keys = await publicKeys(c, options);
      const { head } = trustedHead(c, options.trustedSth);
      const r = await withStore(c, (store) =>
        pruneAuditLog({
          store,
          before,
          publicKeys: keys,
          ...(head ? { trustedSth: head } : {}),
          ...(options.dryRun ? { dryRun: true } : {}),
          onProgress: progressPrinter(),
        }),
      );
      process.stdout.write(
        `${r.dryRun ? 'would prune' : 'pruned'} ${r.entriesPruned} entries: prune point ${r.previous} → ${r.prunedBefore} ` +
          `(stopped by ${r.stoppedBy})\n`,
      );
    }),
  );
  return audit;
}
