/**
 * Removes personal data from anything about to be logged. Keys are judged by name at any depth; strings
 * are scrubbed of email addresses and E.164 phone numbers whatever key they sit under; errors keep their
 * type, code, scrubbed message and stack frames, never their other properties (a driver error's
 * `keyValue`, a request's body) nor the message line inside `stack`.
 */

export const REDACTED = '[REDACTED]';

// Compared after lower-casing and dropping '_' and '-': `first_name`, `firstName` and `FIRST-NAME` are one key.
const SENSITIVE_KEYS = new Set(['name', 'recipient', 'recipients', 'otp', 'totp', 'dob', 'body', 'html']);
const SENSITIVE_SUFFIXES = [
  'email',
  'emails',
  'phone',
  'phones',
  'phonenumber',
  'mobile',
  'msisdn',
  'address',
  'addresses',
  'firstname',
  'lastname',
  'fullname',
  'givenname',
  'familyname',
  'middlename',
  'displayname',
  'username',
  'plaintext',
  'password',
  'passwd',
  'passphrase',
  'token',
  'tokens',
  'secret',
  'apikey',
  'privatekey',
  'authorization',
  'cookie',
  'cookies',
  'birthdate',
  'dateofbirth',
];

/** True when a property of this name is assumed to hold personal data or a secret. */
export function isSensitiveKey(key: string): boolean {
  const k = key.toLowerCase().replace(/[_-]/g, '');
  return SENSITIVE_KEYS.has(k) || SENSITIVE_SUFFIXES.some((suffix) => k.endsWith(suffix));
}

const EMAIL =
  /[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+/g;
// E.164 as the vault normalises it, plus the usual spaced/dashed forms that start with '+'.
const PHONE = /\+[1-9](?:[\s().-]?\d){6,14}/g;

/** Replaces email addresses and '+'-prefixed phone numbers inside free text. */
export function scrubText(text: string): string {
  return text.replace(EMAIL, '[email]').replace(PHONE, '[phone]');
}

const MAX_DEPTH = 8;
const MAX_CAUSES = 3;
const MAX_MESSAGE = 300;

export interface SafeError {
  type: string;
  code?: string | number;
  message: string;
  stack?: string;
  cause?: SafeError | string;
  errors?: SafeError[];
}

/** An error reduced to what is safe to log: type, code, scrubbed message, stack frames, causes. */
export function safeError(error: Error, depth = 0): SafeError {
  // First line only, bounded: further lines of driver and validation errors tend to quote the input.
  const firstLine = String(error.message).split('\n', 1)[0] ?? '';
  const message = scrubText(firstLine.length > MAX_MESSAGE ? `${firstLine.slice(0, MAX_MESSAGE)}…` : firstLine);
  const out: SafeError = { type: error.name || error.constructor?.name || 'Error', message };
  const code = (error as { code?: unknown }).code;
  if ((typeof code === 'string' && /^[A-Za-z0-9_.:-]{1,64}$/.test(code)) || typeof code === 'number') out.code = code;
  if (typeof error.stack === 'string') {
    // The first lines of a V8 stack repeat the message (which may span lines); keep only the frames.
    const frames = error.stack.split('\n').filter((line) => /^\s+at /.test(line));
    if (frames.length > 0) out.stack = frames.join('\n');
  }
  const cause = (error as { cause?: unknown }).cause;
  if (cause !== undefined) {
    out.cause =
      depth >= MAX_CAUSES
        ? '[cause chain truncated]'
        : cause instanceof Error
          ? safeError(cause, depth + 1)
          : '[non-error cause]';
  }
  if (error instanceof AggregateError && depth < MAX_CAUSES) {
    out.errors = error.errors
      .slice(0, 10)
      .map((e) => (e instanceof Error ? safeError(e, depth + 1) : { type: 'unknown', message: '[non-error]' }));
  }
  return out;
}

interface RequestLike {
  method?: unknown;
  url?: unknown;
  headers?: unknown;
  socket?: unknown;
}

/** Method and path of an HTTP request, with every query value removed (tokens and addresses travel there). */
export function safeRequest(req: RequestLike): { method: string; url: string } {
  const url = typeof req.url === 'string' ? req.url : '';
  return { method: String(req.method ?? ''), url: redactQueryValues(url) };
}

/** Keeps a URL's query keys, replacing every value: `/c?token=abc&x=1` → `/c?token=REDACTED&x=REDACTED`. */
export function redactQueryValues(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const keys = url
    .slice(q + 1)
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => `${pair.split('=')[0]}=REDACTED`);
  return `${url.slice(0, q)}?${keys.join('&')}`;
}

function isRequestLike(value: object): value is RequestLike {
  return 'method' in value && 'headers' in value && 'socket' in value;
}

/**
 * A copy of `value` with sensitive keys replaced by `[REDACTED]` at any depth, strings scrubbed, errors
 * made safe and binary data elided. Never mutates its input; cycles and excessive depth are cut.
 */
export function redactDeep(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (typeof value === 'bigint') return value.toString();
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return safeError(value);
  if (value instanceof Date) return value;
  // Bytes may be plaintext or key material; their length is all a log needs.
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return `[binary ${value.byteLength} bytes]`;
  if (seen.has(value)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[depth limit]';
  if (isRequestLike(value)) return safeRequest(value);
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => redactDeep(item, depth + 1, seen));
    if (value instanceof Map) {
      const out: Record<string, unknown> = {};
      for (const [key, item] of value) {
        const k = String(key);
        out[k] = isSensitiveKey(k) ? REDACTED : redactDeep(item, depth + 1, seen);
      }
      return out;
    }
    if (value instanceof Set) return [...value].map((item) => redactDeep(item, depth + 1, seen));
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      const item = (value as Record<string, unknown>)[key];
      out[key] =
        isSensitiveKey(key) && item !== undefined && item !== null ? REDACTED : redactDeep(item, depth + 1, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}
