import { Command, type CommanderError } from 'commander';
import { vaultV1 } from '@sealpost/proto';
import {
  CliUsageError,
  EXIT_USAGE,
  callMetadata,
  connectVault,
  guarded,
  pollOperation,
  readToken,
  unaryCall,
  vaultConfig,
  type OnlineOptions,
} from '../vault-client';
import { progressLine } from './contacts';

/** `sealpost keys …`: tenant key rotation through the running vault. */
export function keysCommand(): Command {
  const keys = new Command('keys').description('Tenant keys in the vault: rotate the KEK or the blind-index root');
  keys
    .command('rotate')
    .description(
      'Rotate a tenant key (needs keys:rotate, MFA and a purpose): kek = new key-encryption key, data keys ' +
        'rewrapped in the background; index = new index root, contacts re-indexed and re-normalised under the ' +
        'current rules (apply a change of email folding this way). A rotation that stopped part-way is resumed by ' +
        'running the command again. Waits with a progress bar',
    )
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--kind <kind>', 'kek or index', 'kek')
    .requiredOption('--purpose <code>', 'purpose code from the configured list (e.g. legal-hold)')
    .option('--ticket <ref>', 'ticket reference matching the configured pattern')
    .option(
      '--request-id <id>',
      'request id (8-128 of A-Z a-z 0-9 . _ : -): running the command again with it answers with the same operation',
    )
    .option('--token-file <file>', 'operator access token: a file, or - to read it from stdin')
    .option('--data-dir <dir>', 'data directory holding endpoints.json (default: SEALPOST_DATA_DIR or ./.sealpost)')
    .exitOverride((err: CommanderError) => {
      process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
    })
    .action(
      guarded(
        async (
          options: OnlineOptions & {
            tenant: string;
            kind: string;
            purpose: string;
            ticket?: string;
            requestId?: string;
          },
        ) => {
          if (options.kind !== 'kek' && options.kind !== 'index')
            throw new CliUsageError('--kind must be kek or index');
          const config = vaultConfig(options);
          const token = await readToken(options.tokenFile);
          const client = connectVault(config);
          try {
            const started = Date.now();
            const first = await unaryCall<vaultV1.RotateTenantKeyRequest, vaultV1.Operation>(
              client,
              'rotateTenantKey',
              vaultV1.RotateTenantKeyRequest.fromPartial({
                tenantId: options.tenant,
                keyKind: options.kind,
                ...(options.requestId !== undefined ? { requestId: options.requestId } : {}),
              }),
              callMetadata(token, { code: options.purpose, ticket: options.ticket }),
            );
            const op = await pollOperation(client, token, first, (o) => {
              const line = progressLine(Math.round(o.progress * 1000), 1000, started, 'permille');
              process.stderr.write(`${line.replace(/ \d+\/1000 permille/, '').replace(/ \d+ permille\/s/, '')}\n`);
            });
            if (op.errorReason !== '') {
              process.stderr.write(`sealpost: rotation ${op.operationId} failed: ${op.errorReason}\n`);
              process.exitCode = 1;
              return;
            }
            process.stdout.write(
              `rotated the ${options.kind} key of ${options.tenant} (operation ${op.operationId})\n`,
            );
            if (op.result) process.stdout.write(`${op.result}\n`);
            const conflicts = (JSON.parse(op.result || '{}') as { conflicts?: number }).conflicts ?? 0;
            if (conflicts > 0) {
              process.stderr.write(
                `sealpost: ${conflicts} contacts collide with another under the current normalisation rules; ` +
                  'they were kept as stored, not merged (conflictContactIds)\n',
              );
            }
          } finally {
            client.close();
          }
        },
      ),
    );
  return keys;
}
