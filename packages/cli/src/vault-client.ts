/**
 * How the CLI reaches the running contact vault: the address and mutual-TLS files from `<data>/endpoints.json`
 * (written by `pnpm start`), an operator token from `--token-file` (a file, or `-` for stdin), purpose metadata.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadConfig, type SealpostConfig } from '@sealpost/config';
import { vaultV1 } from '@sealpost/proto';

/** Exit codes of the contacts/keys commands: 0 done, 1 refused or failed, 2 usage or input error. */
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** A usage, input or configuration error: exit code 2, nothing was sent. */
export class CliUsageError extends Error {
  override readonly name = 'CliUsageError';
  readonly code = 'CLI_USAGE';
}

/** A refusal or failure reported by the vault: exit code 1, with its stable reason. */
export class VaultCallError extends Error {
  override readonly name = 'VaultCallError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface OnlineOptions {
  dataDir?: string;
  tokenFile?: string;
}

/** A generic grpc-js client of `sealpost.vault.v1.ContactVault` (methods by their camelCase names). */
export type VaultClient = grpc.Client;
const ContactVaultClient = grpc.makeGenericClientConstructor(vaultV1.ContactVaultService, 'ContactVault');

/** Configuration as the vault would load it, with `--data-dir` taking the place of SEALPOST_DATA_DIR. */
export function vaultConfig(options: { dataDir?: string }): SealpostConfig {
  try {
    return loadConfig(
      'contact-vault',
      options.dataDir ? { ...process.env, SEALPOST_DATA_DIR: path.resolve(options.dataDir) } : process.env,
    );
  } catch (err) {
    throw new CliUsageError(err instanceof Error ? err.message : String(err));
  }
}

interface EndpointsFile {
  readonly caFile: string;
  readonly client: { readonly certFile: string; readonly keyFile: string };
  readonly services: Readonly<Record<string, { readonly grpc: string }>>;
}

/** Reads the operator token: from a file, or stdin for `-`. */
export async function readToken(tokenFile: string | undefined): Promise<string> {
  if (!tokenFile) {
    throw new CliUsageError(
      'an operator token is needed: --token-file FILE, or --token-file - to read it from stdin ' +
        '(development: pnpm sealpost dev token --role R --tenant T)',
    );
  }
  let text: string;
  if (tokenFile === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    text = Buffer.concat(chunks).toString('utf8');
  } else {
    try {
      text = readFileSync(tokenFile, 'utf8');
    } catch {
      throw new CliUsageError(`--token-file ${tokenFile} is not readable`);
    }
  }
  const token = text.trim();
  if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token))
    throw new CliUsageError('the token is not a JWT (three base64url parts)');
  return token;
}

/** Opens a client to the running vault from endpoints.json; throws CliUsageError when nothing is running. */
export function connectVault(config: SealpostConfig): VaultClient {
  const file = path.join(config.dataDir, 'endpoints.json');
  if (!existsSync(file)) {
    throw new CliUsageError(`no ${file}: start the services first (pnpm start), or pass --data-dir`);
  }
  let endpoints: EndpointsFile;
  try {
    endpoints = JSON.parse(readFileSync(file, 'utf8')) as EndpointsFile;
  } catch {
    throw new CliUsageError(`${file} is not valid JSON`);
  }
  const vault = endpoints.services?.['contact-vault'];
  if (!vault) throw new CliUsageError(`${file} lists no contact-vault service`);
  let credentials: grpc.ChannelCredentials;
  try {
    credentials = grpc.credentials.createSsl(
      readFileSync(endpoints.caFile),
      readFileSync(endpoints.client.keyFile),
      readFileSync(endpoints.client.certFile),
    );
  } catch {
    throw new CliUsageError(`the TLS files named in ${file} are not readable`);
  }
  // Embedded endpoints are loopback IPs; naming the server `localhost` (a SAN of its dev certificate) avoids
  // sending an IP address as the TLS server name, which RFC 6066 forbids and Node warns about.
  const loopback = /^(127\.\d+\.\d+\.\d+|\[::1\]):\d+$/.test(vault.grpc);
  return new ContactVaultClient(
    vault.grpc,
    credentials,
    loopback ? { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' } : {},
  );
}

/** Call metadata: the bearer token and, for sensitive calls, the stated purpose. */
export function callMetadata(token: string, purpose?: { code: string; ticket?: string | undefined }): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  if (purpose) {
    md.set('x-sealpost-purpose', purpose.code);
    if (purpose.ticket) md.set('x-sealpost-ticket', purpose.ticket);
  }
  return md;
}

const HINTS: Record<string, string> = {
  STEP_UP_REQUIRED:
    'this call needs a recent MFA step-up: use a token issued with MFA ' +
    '(development: pnpm sealpost dev token --role support --tenant T --mfa)',
  TOKEN_INVALID: 'the operator token was refused (expired, or not issued for this deployment)',
  PERMISSION_DENIED: "the token's role does not grant this call",
};

/** Turns a gRPC error into a VaultCallError with the server's stable reason (metadata `x-sealpost-reason`). */
export function callError(err: unknown): VaultCallError {
  const e = err as grpc.ServiceError;
  const [reason] = e.metadata?.get('x-sealpost-reason') ?? [];
  const code = typeof reason === 'string' && reason !== '' ? reason : (grpc.status[e.code] ?? 'UNKNOWN');
  const hint =
    HINTS[code] ?? (e.code === grpc.status.UNAVAILABLE && code === 'UNAVAILABLE' ? 'is the vault running?' : '');
  return new VaultCallError(code, `${e.details || e.message}${hint ? ` — ${hint}` : ''}`);
}

/** Promise form of a unary call with a deadline. */
export function unaryCall<Req, Res>(
  client: VaultClient,
  method: keyof typeof vaultV1.ContactVaultService,
  request: Req,
  metadata: grpc.Metadata,
  timeoutMs = 30_000,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, unknown>)[method] as (
      r: Req,
      m: grpc.Metadata,
      o: grpc.CallOptions,
      cb: (e: grpc.ServiceError | null, r: Res) => void,
    ) => void;
    fn.call(client, request, metadata, { deadline: Date.now() + timeoutMs }, (error, response) =>
      error ? reject(callError(error)) : resolve(response),
    );
  });
}

/** Polls GetOperation until done; `onProgress` sees every answer. */
export async function pollOperation(
  client: VaultClient,
  token: string,
  first: vaultV1.Operation,
  onProgress: (op: vaultV1.Operation) => void,
  intervalMs = 250,
): Promise<vaultV1.Operation> {
  let op = first;
  onProgress(op);
  while (!op.done) {
    await new Promise((r) => setTimeout(r, intervalMs));
    op = await unaryCall<vaultV1.GetOperationRequest, vaultV1.Operation>(
      client,
      'getOperation',
      { operationId: op.operationId },
      callMetadata(token),
    );
    onProgress(op);
  }
  return op;
}

/** Runs an action; usage errors exit 2, vault refusals exit 1, each with one line on stderr. */
export function guarded<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      if (err instanceof CliUsageError) {
        process.stderr.write(`sealpost: ${err.message}\n`);
        process.exitCode = EXIT_USAGE;
        return;
      }
      if (err instanceof VaultCallError) {
        process.stderr.write(`sealpost: ${err.code}: ${err.message}\n`);
        process.exitCode = EXIT_FAILED;
        return;
      }
      throw err;
    }
  };
}
