import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { Command, type CommanderError } from 'commander';
import { LocalEd25519Signer } from '@sealpost/audit';
import { INCLUSION_PROOF_FORMAT, type InclusionProofBundle } from '@sealpost/audit-format';
import { loadConfig } from '@sealpost/config';
import {
  CONTACT_FIELD_NAMES,
  MAX_RAW_FIELD_BYTES,
  RECEIPT_KEY_FILE,
  VaultError,
  localReceiptPublicJwk,
  openReceiptSigner,
  openVaultRuntime,
  reapplyErasureLedger,
  sweepRetention,
  verifyErasureReceipt,
  type AuditPublisher,
  type AuditPublicKeys,
  type ErasureReceipt,
  type ReceiptVerification,
  type RetentionPolicy,
} from '@sealpost/contact-vault';
import { vaultV1 } from '@sealpost/proto';
import { CsvError, parseContactCsv, type CsvContactRow } from '../csv';
import {
  CliUsageError,
  EXIT_USAGE,
  callError,
  callMetadata,
  connectVault,
  guarded,
  pollOperation,
  readToken,
  unaryCall,
  vaultConfig,
  type OnlineOptions,
  type VaultClient,
} from '../vault-client';

/** What `contacts import` reports: counts per outcome and each rejection by row number. */
export interface ImportSummary {
  rows: number;
  created: number;
  updated: number;
  unchanged: number;
  rejected: number;
  rejections: { row: number; reason: string; field: string }[];
  seconds: number;
  rowsPerSecond: number;
}

const online = (cmd: Command): Command =>
  cmd
    .option('--token-file <file>', 'operator access token: a file, or - to read it from stdin')
    .option('--data-dir <dir>', 'data directory holding endpoints.json (default: SEALPOST_DATA_DIR or ./.sealpost)');

/** Commander's own usage errors (missing option, unknown flag) exit 2 too; --help exits 0. */
function exitCodes(cmd: Command): Command {
  return cmd.exitOverride((err: CommanderError) => {
    process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
  });
}

async function withVault<T>(
  options: OnlineOptions,
  fn: (client: VaultClient, token: string) => Promise<T>,
): Promise<T> {
  const config = vaultConfig(options);
  const token = await readToken(options.tokenFile);
  const client = connectVault(config);
  try {
    return await fn(client, token);
  } finally {
    client.close();
  }
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** A one-line progress bar on stderr (redrawn in place on a terminal, a line per update otherwise). */
export function progressLine(done: number, total: number, started: number, unit: string): string {
  const fraction = total > 0 ? Math.min(1, done / total) : 1;
  const width = 24;
  const filled = Math.round(fraction * width);
  const elapsed = (Date.now() - started) / 1000;
  const rate = elapsed > 0 ? done / elapsed : 0;
  const eta = rate > 0 ? (total - done) / rate : Infinity;
  return (
    `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${unit} ` +
    `${(fraction * 100).toFixed(0)}% ${Math.round(rate)} ${unit}/s ETA ${duration(eta)}`
  );
}

function writeProgress(line: string, final = false): void {
  if (process.stderr.isTTY) process.stderr.write(`\r${line}${final ? '\n' : ''}`);
  else process.stderr.write(`${line}\n`);
}

/**
 * Rows per ImportContacts message, and their field values at most (UTF-8). The vault takes up to 1,000 rows and 1 MiB
 * per message; a few hundred rows already make gRPC's per-message cost small beside the rows' own.
 */
export const IMPORT_ROWS_PER_MESSAGE = 500;
export const IMPORT_BYTES_PER_MESSAGE = 256 * 1024;

const fieldBytes = (r: CsvContactRow): number =>
  Buffer.byteLength(r.email) + Buffer.byteLength(r.phone) + Buffer.byteLength(r.name);

/**
 * A row too large for a message of its own holds a field the vault refuses (each is at most MAX_RAW_FIELD_BYTES): it
 * is answered here with the vault's own rejection, so one such row does not end the import.
 */
function oversizedRowResult(r: CsvContactRow): vaultV1.ImportContactsRowResult {
  const field = CONTACT_FIELD_NAMES.find((f) => Buffer.byteLength(r[f]) > MAX_RAW_FIELD_BYTES) ?? 'fields';
  return { row: String(r.row), result: 'rejected', contactId: '', reason: 'INVALID_ARGUMENT', field };
}

/** Streams rows over ImportContacts in chunks, with flow control, passing on each row's result. */
function streamImport(
  client: VaultClient,
  token: string,
  tenantId: string,
  rows: readonly CsvContactRow[],
  onResult: (r: vaultV1.ImportContactsRowResult) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const call = (
      client as unknown as {
        importContacts: (
          md: grpc.Metadata,
        ) => grpc.ClientDuplexStream<vaultV1.ImportContactsRequest, vaultV1.ImportContactsResponse>;
      }
    ).importContacts(callMetadata(token));
    call.on('data', (response: vaultV1.ImportContactsResponse) => {
      for (const result of response.results) onResult(result);
    });
    call.on('error', (err) => reject(callError(err)));
    call.on('end', () => resolve());
    let next = 0;
    const pump = (): void => {
      while (next < rows.length) {
        const chunk: vaultV1.ImportContactsRow[] = [];
        let bytes = 0;
        while (next < rows.length && chunk.length < IMPORT_ROWS_PER_MESSAGE) {
          const r = rows[next]!;
          const size = fieldBytes(r);
          if (size > IMPORT_BYTES_PER_MESSAGE) {
            onResult(oversizedRowResult(r));
            next++;
            continue;
          }
          if (bytes + size > IMPORT_BYTES_PER_MESSAGE) break;
          bytes += size;
          chunk.push({ row: String(r.row), fields: { email: r.email, phone: r.phone, name: r.name } });
          next++;
        }
        if (chunk.length === 0) continue;
        if (!call.write({ tenantId, rows: chunk })) {
          call.once('drain', pump);
          return;
        }
      }
      call.end();
    };
    pump();
  });
}

/** Imports a parsed CSV through the running vault; prints progress on stderr. */
export async function importCsv(
  client: VaultClient,
  token: string,
  tenantId: string,
  rows: readonly CsvContactRow[],
  options: { progress?: boolean } = {},
): Promise<ImportSummary> {
  const started = Date.now();
  const summary: ImportSummary = {
    rows: rows.length,
    created: 0,
    updated: 0,
    unchanged: 0,
    rejected: 0,
    rejections: [],
    seconds: 0,
    rowsPerSecond: 0,
  };
  let done = 0;
  let lastDraw = 0;
  await streamImport(client, token, tenantId, rows, (r) => {
    done++;
    if (r.result === 'created' || r.result === 'updated' || r.result === 'unchanged') summary[r.result]++;
    else {
      summary.rejected++;
      summary.rejections.push({ row: Number(r.row), reason: r.reason, field: r.field });
    }
    if (options.progress !== false && Date.now() - lastDraw >= 500) {
      lastDraw = Date.now();
      writeProgress(progressLine(done, rows.length, started, 'rows'));
    }
  });
  if (done !== rows.length) {
    throw new CliUsageError(`the vault answered ${done} of ${rows.length} rows; the import is incomplete`);
  }
  summary.seconds = (Date.now() - started) / 1000;
  summary.rowsPerSecond = summary.seconds > 0 ? Math.round(rows.length / summary.seconds) : rows.length;
  summary.rejections.sort((a, b) => a.row - b.row);
  if (options.progress !== false) writeProgress(progressLine(done, rows.length, started, 'rows'), true);
  return summary;
}

function printMasked(contacts: readonly vaultV1.MaskedContact[]): void {
  if (contacts.length === 0) {
    process.stdout.write('no contact found\n');
    return;
  }
  for (const c of contacts) {
    const parts = [
      c.contactId,
      `email ${c.emailMasked || '-'}`,
      `phone ${c.phoneMasked || '-'}`,
      `name ${c.nameMasked || '-'}`,
      `version ${c.version}`,
    ];
    process.stdout.write(`${parts.join('  ')}\n`);
  }
}

/** The receipt's payload (a compact JWS; the signature is checked by whoever relies on it). */
function receiptPayload(jws: string): unknown {
  const [, payload] = jws.split('.');
  try {
    return JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Offline commands publish no audit events: a dry run erases nothing, re-applying the ledger is not an access. Their
 * runtime also never asks the audit service for proofs (openVaultRuntime's default), so no receipt is issued offline.
 */
const NO_AUDIT: AuditPublisher = {
  async record() {
    throw new VaultError('AUDIT_UNAVAILABLE', 'offline maintenance commands publish no audit events');
  },
  async publishEntry() {
    throw new VaultError('AUDIT_UNAVAILABLE', 'offline maintenance commands publish no audit events');
  },
};

type ReceiptKeys = Parameters<typeof verifyErasureReceipt>[1]['receipt'];

/** Keys from a JWKS file (`{"keys": [...]}`), a JSON array of JWKs, or one JWK. Names the option on failure. */
function readJwks(file: string, option: string): Record<string, unknown>[] {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw new CliUsageError(`${option} ${file} is not a readable JSON file`);
  }
  const keys = Array.isArray(doc)
    ? doc
    : Array.isArray((doc as { keys?: unknown })?.keys)
      ? (doc as { keys: unknown[] }).keys
      : [doc];
  const usable = keys.filter(
    (k): k is Record<string, unknown> =>
      typeof k === 'object' && k !== null && typeof (k as { kid?: unknown }).kid === 'string',
  );
  if (usable.length === 0) throw new CliUsageError(`${option} ${file} holds no key with a kid`);
  // Verify with the public half only, and with the algorithm the key's curve implies when the JWK names none.
  return usable.map((k) => {
    const { d: _d, ...pub } = k;
    return { alg: pub.crv === 'P-256' ? 'ES256' : 'EdDSA', use: 'sig', ...pub };
  });
}

/** The vault's receipt-signing public keys: `--receipt-jwks`, else the embedded local key under the data dir. */
async function receiptKeys(options: { receiptJwks?: string; dataDir?: string }): Promise<ReceiptKeys> {
  if (options.receiptJwks) return readJwks(options.receiptJwks, '--receipt-jwks') as unknown as ReceiptKeys;
  const config = vaultConfig(options);
  if (config.mode === 'production' || config.vault.receiptSigningKeyId !== undefined) {
    throw new CliUsageError(
      'receipts are signed by a KMS key here: pass its public key with --receipt-jwks FILE ' +
        '(pnpm sealpost contacts receipt-public-key prints it)',
    );
  }
  const file = path.join(config.dataDir, RECEIPT_KEY_FILE);
  if (!existsSync(file))
    throw new CliUsageError(`no receipt key at ${file} (has the vault run?); pass --receipt-jwks FILE`);
  return [await localReceiptPublicJwk(config.dataDir)];
}

/** The audit's tree-head public keys: `--audit-jwks`, else the embedded local key under the data dir. */
async function auditKeys(options: { auditJwks?: string; dataDir?: string }): Promise<AuditPublicKeys> {
  if (options.auditJwks) return readJwks(options.auditJwks, '--audit-jwks') as unknown as AuditPublicKeys;
  let config;
  try {
    config = loadConfig(
      'audit',
      options.dataDir ? { ...process.env, SEALPOST_DATA_DIR: path.resolve(options.dataDir) } : process.env,
    );
  } catch (err) {
    throw new CliUsageError(err instanceof Error ? err.message : String(err));
  }
  if (config.mode === 'production' || config.audit.signingKeyId !== undefined) {
    throw new CliUsageError(
      "tree heads are signed by a KMS key here: pass the audit's published JWKS with --audit-jwks FILE",
    );
  }
  const file = path.join(config.dataDir, 'audit', 'sth-signing.jwk.json');
  if (!existsSync(file)) {
    throw new CliUsageError(`no tree-head key at ${file} (has the audit service run?); pass --audit-jwks FILE`);
  }
  return [await LocalEd25519Signer.publicJwkFromFile(file)] as unknown as AuditPublicKeys;
}

/** The receipt JWS from a file (or stdin for `-`): a bare compact JWS, or the `receipt: …` line `contacts erase` prints. */
async function readReceipt(file: string): Promise<string> {
  let text: string;
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    text = Buffer.concat(chunks).toString('utf8');
  } else {
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      throw new CliUsageError(`${file} is not readable`);
    }
  }
  const JWS = /^[\w-]+\.[\w-]+\.[\w-]+$/;
  const candidates = [text.trim(), ...text.split('\n').map((l) => l.replace(/^receipt:\s*/, '').trim())];
  const jws = candidates.find((c) => JWS.test(c));
  if (!jws) throw new CliUsageError(`${file} holds no receipt (a compact JWS)`);
  return jws;
}

/** The receipt's audit proof as the standalone verifier's bundle (services/audit/tools/verify-proof.mjs). */
function auditProofBundle(receipt: ErasureReceipt): InclusionProofBundle {
  const hex = (b64url: string): string => Buffer.from(b64url, 'base64url').toString('hex');
  return {
    format: INCLUSION_PROOF_FORMAT,
    entryId: receipt.auditEntry.entryId,
    leafIndex: receipt.inclusionProof.leafIndex,
    entry: Buffer.from(receipt.auditEntry.canonical, 'base64url').toString('base64'),
    leafHash: hex(receipt.auditEntry.leafHash),
    treeSize: receipt.inclusionProof.treeSize,
    proof: receipt.inclusionProof.hashes.map(hex),
    sth: receipt.treeHead,
  };
}

function receiptVerdict(v: ReceiptVerification): string {
  if (!v.ok) return `receipt FAILED: ${v.problem}: ${v.detail}\n`;
  const r = v.receipt;
  const h = r.treeHead;
  return (
    `receipt OK: erasure ${r.erasureId} of contact ${r.contactId} in tenant ${r.tenantId} at ${r.erasedAt}, ` +
    `signed by receipt key ${v.receiptKid}\n` +
    `audit entry ${r.auditEventId} (${v.entry.action}) is leaf ${r.inclusionProof.leafIndex} of log ${h.logId} ` +
    `at size ${h.treeSize}, root ${h.rootHash}, head signed ${new Date(h.timestamp).toISOString()} by audit key ${h.kid}\n` +
    `erased: ${r.erased.join('; ')}\nkept: ${r.kept.map((k) => k.what).join('; ')}\n`
  );
}

/** `sealpost contacts …`: import, find, reveal and erase through the running vault; offline maintenance. */
export function contactsCommand(): Command {
  const contacts = new Command('contacts').description(
    'Contacts in the vault: import a CSV, find, reveal (MFA + purpose), erase; offline retention and restore tasks',
  );

  exitCodes(
    online(
      contacts
        .command('import')
        .description(
          'Import a CSV (header: email and/or phone, optional name; UTF-8) over ImportContacts. The whole file is ' +
            'checked first: wrong columns or broken encoding exit 2 naming the row, and nothing is sent. Rows are ' +
            'numbered as in a spreadsheet (the header is row 1). Progress on stderr, then created / updated / ' +
            'unchanged / rejected with reasons by row number. Re-running the same file changes nothing',
        )
        .argument('<file>', 'CSV file')
        .requiredOption('--tenant <tenant>', 'tenant id')
        .option('--json', 'print the summary as JSON'),
    ),
  ).action(
    guarded(async (file: string, options: OnlineOptions & { tenant: string; json?: boolean }) => {
      let bytes: Buffer;
      try {
        bytes = readFileSync(file);
      } catch {
        throw new CliUsageError(`${file} is not readable`);
      }
      let rows: CsvContactRow[];
      try {
        rows = parseContactCsv(bytes);
      } catch (err) {
        if (err instanceof CsvError) throw new CliUsageError(`${file}: ${err.message}; nothing was imported`);
        throw err;
      }
      const summary = await withVault(options, (client, token) => importCsv(client, token, options.tenant, rows));
      if (options.json) {
        process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        return;
      }
      process.stdout.write(
        `imported ${summary.rows} rows in ${summary.seconds.toFixed(1)}s (${summary.rowsPerSecond} rows/s): ` +
          `created ${summary.created}, updated ${summary.updated}, unchanged ${summary.unchanged}, ` +
          `rejected ${summary.rejected}\n`,
      );
      for (const r of summary.rejections) {
        process.stdout.write(`  row ${r.row}: ${r.reason}${r.field ? ` (${r.field})` : ''}\n`);
      }
    }),
  );

  exitCodes(
    online(
      contacts
        .command('find')
        .description('Find contacts by exact email or phone, through the blind index only; prints masked views')
        .requiredOption('--tenant <tenant>', 'tenant id')
        .option('--email <email>', 'email address to look up')
        .option('--phone <phone>', 'phone number to look up'),
    ),
  ).action(
    guarded(async (options: OnlineOptions & { tenant: string; email?: string; phone?: string }) => {
      if ((options.email === undefined) === (options.phone === undefined)) {
        throw new CliUsageError('give exactly one of --email or --phone');
      }
      const by =
        options.email !== undefined
          ? { $case: 'email' as const, value: options.email }
          : { $case: 'phone' as const, value: options.phone! };
      const response = await withVault(options, (client, token) =>
        unaryCall<vaultV1.FindContactsRequest, vaultV1.FindContactsResponse>(
          client,
          'findContacts',
          vaultV1.FindContactsRequest.fromPartial({ tenantId: options.tenant, by }),
          callMetadata(token),
        ),
      );
      printMasked(response.contacts);
    }),
  );

  exitCodes(
    online(
      contacts
        .command('reveal')
        .description(
          'Print a contact in plaintext. Needs contacts:reveal, a token with a recent MFA step-up ' +
            '(development: pnpm sealpost dev token --role support --tenant T --mfa) and a purpose; audited before ' +
            'anything is shown',
        )
        .argument('<contact-id>', 'contact id')
        .requiredOption('--tenant <tenant>', 'tenant id')
        .requiredOption('--purpose <code>', 'purpose code from the configured list (e.g. support-request)')
        .option('--ticket <ref>', 'ticket reference matching the configured pattern (e.g. OPS-1234)'),
    ),
  ).action(
    guarded(async (id: string, options: OnlineOptions & { tenant: string; purpose: string; ticket?: string }) => {
      const response = await withVault(options, (client, token) =>
        unaryCall<vaultV1.RevealContactRequest, vaultV1.RevealContactResponse>(
          client,
          'revealContact',
          vaultV1.RevealContactRequest.fromPartial({ tenantId: options.tenant, contactId: id }),
          callMetadata(token, { code: options.purpose, ticket: options.ticket }),
        ),
      );
      const f = response.fields;
      process.stdout.write(
        `contact ${response.contactId}\nemail: ${f?.email ?? ''}\nphone: ${f?.phone ?? ''}\nname: ${f?.name ?? ''}\n`,
      );
      process.stderr.write(`audited as event ${response.auditEventId}\n`);
    }),
  );

  exitCodes(
    online(
      contacts
        .command('erase')
        .description(
          'Erase a contact by crypto-shredding (needs contacts:erase, MFA and a purpose); waits for the operation ' +
            'and prints its signed receipt',
        )
        .argument('<contact-id>', 'contact id')
        .requiredOption('--tenant <tenant>', 'tenant id')
        .requiredOption('--purpose <code>', 'purpose code from the configured list (e.g. subject-access)')
        .option('--ticket <ref>', 'ticket reference matching the configured pattern')
        .option('--keep-suppression', 'keep a suppression tombstone so the address is never contacted again')
        .option('--receipt-out <file>', 'also write the receipt (compact JWS) to this file, for verify-receipt'),
    ),
  ).action(
    guarded(
      async (
        id: string,
        options: OnlineOptions & {
          tenant: string;
          purpose: string;
          ticket?: string;
          keepSuppression?: boolean;
          receiptOut?: string;
        },
      ) => {
        const op = await withVault(options, async (client, token) => {
          const first = await unaryCall<vaultV1.EraseContactRequest, vaultV1.Operation>(
            client,
            'eraseContact',
            vaultV1.EraseContactRequest.fromPartial({
              tenantId: options.tenant,
              contactId: id,
              keepSuppressionTombstone: options.keepSuppression === true,
            }),
            callMetadata(token, { code: options.purpose, ticket: options.ticket }),
          );
          let shown = -1;
          return pollOperation(client, token, first, (o) => {
            // Mostly the wait for the audit log to append and sign the erasure's entry (the receipt's proof).
            const percent = Math.round(o.progress * 100);
            if (!o.done && percent !== shown) process.stderr.write(`erasure ${o.operationId} running (${percent}%)…\n`);
            shown = percent;
          });
        });
        if (op.errorReason !== '') {
          process.stderr.write(`sealpost: erasure ${op.operationId} failed: ${op.errorReason}\n`);
          process.exitCode = 1;
          return;
        }
        process.stdout.write(`erased ${id} (operation ${op.operationId})\nreceipt: ${op.result}\n`);
        if (options.receiptOut) {
          writeFileSync(options.receiptOut, `${op.result}\n`);
          process.stderr.write(`wrote the receipt to ${options.receiptOut}\n`);
        }
        const payload = receiptPayload(op.result);
        if (payload !== undefined) process.stdout.write(`receipt payload: ${JSON.stringify(payload, null, 2)}\n`);
      },
    ),
  );

  exitCodes(
    contacts
      .command('verify-receipt')
      .description(
        'Verify an erasure receipt as a third party: the receipt JWS with the vault receipt key, the signed tree ' +
          "head's JWS with the audit key, the leaf hash from the canonical audit entry, the inclusion proof up to " +
          "the signed root, and that the entry is this erasure's. Exit 0: verified, 1: a check failed (printed as " +
          '`receipt FAILED: <PROBLEM>: <why>`), 2: usage or unreadable input. Needs no running service',
      )
      .argument('<file>', 'the receipt: a file holding the compact JWS (or the output of contacts erase), - for stdin')
      .option(
        '--receipt-jwks <file>',
        'public key(s) of the vault receipt signer, a JWKS (contacts receipt-public-key); default: the embedded local key',
      )
      .option(
        '--audit-jwks <file>',
        'public key(s) of the audit tree-head signer, a JWKS (audit public-key); default: the embedded local key',
      )
      .option('--data-dir <dir>', 'data directory for the default keys (default: SEALPOST_DATA_DIR or ./.sealpost)')
      .option(
        '--export-audit-proof <file>',
        "write the receipt's audit proof as a sealpost-audit-inclusion-proof/1 file for services/audit/tools/verify-proof.mjs",
      )
      .option('--json', 'print the verification result as JSON'),
  ).action(
    guarded(
      async (
        file: string,
        options: {
          receiptJwks?: string;
          auditJwks?: string;
          dataDir?: string;
          exportAuditProof?: string;
          json?: boolean;
        },
      ) => {
        const jws = await readReceipt(file);
        const keys = { receipt: await receiptKeys(options), audit: await auditKeys(options) };
        const result = await verifyErasureReceipt(jws, keys);
        process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : receiptVerdict(result));
        if (result.ok && options.exportAuditProof) {
          writeFileSync(options.exportAuditProof, `${JSON.stringify(auditProofBundle(result.receipt), null, 2)}\n`);
          process.stderr.write(`wrote the audit proof to ${options.exportAuditProof}\n`);
        }
        process.exitCode = result.ok ? 0 : 1;
      },
    ),
  );

  exitCodes(
    contacts
      .command('receipt-public-key')
      .description(
        'Print the public key that signs erasure receipts as a JWKS, to give to whoever verifies receipts ' +
          '(the KMS key of SEALPOST_VAULT_RECEIPT_SIGNING_KEY_ID, or the embedded local key)',
      )
      .option('--data-dir <dir>', 'data directory (default: SEALPOST_DATA_DIR or ./.sealpost)'),
  ).action(
    guarded(async (options: { dataDir?: string }) => {
      const config = vaultConfig(options);
      let jwk: object;
      if (config.vault.receiptSigningKeyId !== undefined) {
        jwk = (await openReceiptSigner(config)).publicJwk;
      } else {
        const keyFile = path.join(config.dataDir, RECEIPT_KEY_FILE);
        // Printing a key created just now would hand out a key that never signed anything.
        if (!existsSync(keyFile)) throw new CliUsageError(`no receipt key at ${keyFile} (has the vault run?)`);
        jwk = await localReceiptPublicJwk(config.dataDir);
      }
      process.stdout.write(`${JSON.stringify({ keys: [jwk] }, null, 2)}\n`);
    }),
  );

  exitCodes(
    contacts
      .command('sweep')
      .description(
        'Retention sweep, offline against the configured store: counts per tenant the contacts with no activity ' +
          'for their retention period (SEALPOST_VAULT_RETENTION_DAYS, or --days). Only --dry-run here: the ' +
          'erasing sweep runs inside the vault, where erasures are audited, every ' +
          'SEALPOST_VAULT_RETENTION_SWEEP_EVERY_SECONDS on one replica',
      )
      .option('--dry-run', 'count only (required)')
      .option('--tenant <tenant...>', 'tenants to sweep (needed when the policy applies to all tenants)')
      .option('--days <n>', 'retention in days for the listed tenants, instead of the configured policy')
      .option('--data-dir <dir>', 'data directory (default: SEALPOST_DATA_DIR or ./.sealpost)')
      .option('--json', 'print the report as JSON'),
  ).action(
    guarded(
      async (options: { dryRun?: boolean; tenant?: string[]; days?: string; dataDir?: string; json?: boolean }) => {
        if (!options.dryRun) {
          throw new CliUsageError('only --dry-run runs offline; the erasing sweep runs inside the vault service');
        }
        const config = vaultConfig(options);
        let policy: RetentionPolicy = config.vault.retention;
        if (options.days !== undefined) {
          const days = Number(options.days);
          if (!Number.isInteger(days) || days < 0) throw new CliUsageError('--days must be a whole number');
          if (!options.tenant?.length) throw new CliUsageError('--days needs --tenant');
          policy = { tenants: Object.fromEntries(options.tenant.map((t) => [t, days])) };
        }
        if (policy.all === undefined && Object.keys(policy.tenants).length === 0) {
          throw new CliUsageError('no retention policy: set SEALPOST_VAULT_RETENTION_DAYS or pass --tenant and --days');
        }
        const runtime = await openVaultRuntime(config, NO_AUDIT);
        try {
          const report = await sweepRetention(runtime.deps, {
            policy,
            dryRun: true,
            ...(options.tenant ? { tenants: options.tenant } : {}),
          });
          if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
          else {
            const names = Object.keys(report.tenants);
            if (names.length === 0) process.stdout.write('dry run: no tenant to sweep (name them with --tenant)\n');
            for (const [tenant, r] of Object.entries(report.tenants)) {
              process.stdout.write(`dry run: tenant ${tenant}: ${r.due} contacts inactive for ${r.days}+ days\n`);
            }
          }
        } finally {
          await runtime.close();
        }
      },
    ),
  );

  exitCodes(
    contacts
      .command('reapply-erasures')
      .description(
        "After restoring a backup: re-apply the erasure ledger offline (delete erased contacts' data keys again) " +
          'and report contacts that are live again and must be re-erased',
      )
      .option('--data-dir <dir>', 'data directory (default: SEALPOST_DATA_DIR or ./.sealpost)'),
  ).action(
    guarded(async (options: { dataDir?: string }) => {
      const runtime = await openVaultRuntime(vaultConfig(options), NO_AUDIT);
      try {
        const r = await reapplyErasureLedger(runtime.deps);
        process.stdout.write(
          `erasure ledger: ${r.entries} entries, ${r.keysShredded} data keys deleted again, ` +
            `${r.contactsStillLive} contacts live again (erase them again)\n`,
        );
        if (r.contactsStillLive > 0) process.exitCode = 1;
      } finally {
        await runtime.close();
      }
    }),
  );
  return contacts;
}
