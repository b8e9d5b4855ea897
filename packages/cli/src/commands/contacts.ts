import { readFileSync } from 'node:fs';
import type * as grpc from '@grpc/grpc-js';
import { Command, type CommanderError } from 'commander';
import {
  VaultError,
  openVaultRuntime,
  reapplyErasureLedger,
  sweepRetention,
  type AuditPublisher,
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

/** Streams rows over ImportContacts with flow control, collecting the per-row results. */
function streamImport(
  client: VaultClient,
  token: string,
  tenantId: string,
  rows: readonly CsvContactRow[],
  onResult: (r: vaultV1.ImportContactsResponse) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const call = (
      client as unknown as {
        importContacts: (
          md: grpc.Metadata,
        ) => grpc.ClientDuplexStream<vaultV1.ImportContactsRequest, vaultV1.ImportContactsResponse>;
      }
    ).importContacts(callMetadata(token));
    call.on('data', onResult);
    call.on('error', (err) => reject(callError(err)));
    call.on('end', () => resolve());
    let next = 0;
    const pump = (): void => {
      while (next < rows.length) {
        const r = rows[next++]!;
        const ok = call.write({
          tenantId,
          row: String(r.row),
          fields: { email: r.email, phone: r.phone, name: r.name },
        });
        if (!ok) {
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

/** Offline commands publish no audit events: a dry run erases nothing, re-applying the ledger is not an access. */
const NO_AUDIT: AuditPublisher = {
  async record() {
    throw new VaultError('AUDIT_UNAVAILABLE', 'offline maintenance commands publish no audit events');
  },
};

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
        .option('--keep-suppression', 'keep a suppression tombstone so the address is never contacted again'),
    ),
  ).action(
    guarded(
      async (
        id: string,
        options: OnlineOptions & { tenant: string; purpose: string; ticket?: string; keepSuppression?: boolean },
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
          return pollOperation(client, token, first, (o) => {
            if (!o.done) process.stderr.write(`erasure ${o.operationId} running…\n`);
          });
        });
        if (op.errorReason !== '') {
          process.stderr.write(`sealpost: erasure ${op.operationId} failed: ${op.errorReason}\n`);
          process.exitCode = 1;
          return;
        }
        process.stdout.write(`erased ${id} (operation ${op.operationId})\nreceipt: ${op.result}\n`);
        const payload = receiptPayload(op.result);
        if (payload !== undefined) process.stdout.write(`receipt payload: ${JSON.stringify(payload, null, 2)}\n`);
      },
    ),
  );

  exitCodes(
    contacts
      .command('sweep')
      .description(
        'Retention sweep, offline against the configured store: counts per tenant the contacts with no activity ' +
          'for their retention period (SEALPOST_VAULT_RETENTION_DAYS, or --days). Only --dry-run here: the ' +
          'erasing sweep runs inside the vault, where erasures are audited',
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
