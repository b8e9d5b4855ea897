import { hostname } from 'node:os';
import pino, { type Bindings, type ChildLoggerOptions, type DestinationStream, type Logger } from 'pino';
import { REDACTED, redactDeep, safeError, safeRequest, scrubText } from './redact';

export type { Logger } from 'pino';

/**
 * What a log line may say of an error: its `code` (e.g. `SQLITE_BUSY`, `AUDIT_UNAVAILABLE`) or class name, never
 * its message, which may quote input.
 */
export function errorCode(error: unknown, fallback = 'error'): string {
  return error instanceof Error ? String((error as { code?: unknown }).code ?? error.name) : fallback;
}

export interface LoggerOptions {
  /** Service name; logged as `service: sealpost-<service>`. */
  readonly service: string;
  /** pino level (`info` by default); config's `telemetry.logLevel`. */
  readonly level?: string;
  /** Where JSON lines go (stdout by default); tests pass a collecting stream. */
  readonly destination?: DestinationStream;
}

// The well-known places, censored by pino's own redaction before anything else sees them. The deep
// pass in `formatters.log` below covers every other depth and shape.
const SENSITIVE = [
  'email',
  'phone',
  'address',
  'firstName',
  'lastName',
  'name',
  'plaintext',
  'password',
  'token',
  'secret',
  'authorization',
  'cookie',
];
const REDACT_PATHS = [
  ...SENSITIVE,
  ...SENSITIVE.map((key) => `*.${key}`),
  ...SENSITIVE.map((key) => `*.*.${key}`),
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  'res.headers["set-cookie"]',
];

/**
 * A JSON logger that never writes personal data: sensitive keys are `[REDACTED]` at any depth, email
 * addresses and phone numbers in messages are masked, and errors are logged without data-bearing fields.
 */
export function createLogger(options: LoggerOptions): Logger {
  const logger = pino(
    {
      level: options.level ?? 'info',
      base: { service: `sealpost-${options.service}`, pid: process.pid, hostname: hostname() },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      formatters: {
        level: (label) => ({ level: label }),
        log: (object) => redactDeep(object) as Record<string, unknown>,
        bindings: (bindings) => redactDeep(bindings) as Record<string, unknown>,
      },
      hooks: {
        // Logged without a message, pino would use the error's whole message as `msg`; use the safe one.
        logMethod(args: unknown[], method: (...a: unknown[]) => void) {
          const [first, second] = args;
          const error =
            first instanceof Error
              ? first
              : first && typeof first === 'object' && (first as { err?: unknown }).err instanceof Error
                ? (first as { err: Error }).err
                : undefined;
          if (error && typeof second !== 'string' && (first as { msg?: unknown }).msg === undefined) {
            return method.apply(this, [first, safeError(error).message]);
          }
          return method.apply(this, args);
        },
      },
      serializers: {
        // pino puts a bare Error under `err` and its message in `msg`; both pass through here.
        err: serializeError,
        error: serializeError,
        req: (req: unknown) => (req && typeof req === 'object' ? safeRequest(req) : req),
        res: (res: unknown) =>
          res && typeof res === 'object' ? { statusCode: (res as { statusCode?: unknown }).statusCode } : res,
        msg: (msg: unknown) => (typeof msg === 'string' ? scrubText(msg) : msg),
      },
    },
    options.destination ?? pino.destination(1),
  );
  // pino applies `formatters.bindings` to the root's bindings only; a child's bindings are written as
  // given. Children inherit this property through their prototype, so grandchildren are covered too.
  type ChildFn = (this: Logger, bindings: Bindings, options?: ChildLoggerOptions) => Logger;
  const child = logger.child as unknown as ChildFn;
  logger.child = function redactedChild(this: Logger, bindings: Bindings, childOptions?: ChildLoggerOptions) {
    return child.call(this, redactDeep(bindings) as Bindings, childOptions);
  } as unknown as Logger['child'];
  return logger;
}

function serializeError(value: unknown): unknown {
  return value instanceof Error ? safeError(value) : value;
}
