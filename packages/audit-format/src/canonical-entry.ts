/**
 * The audit entry and its canonical, length-prefixed encoding — the bytes a Merkle leaf hashes.
 *
 * Encoding, version 1 (all integers big-endian):
 *   u8  version = 0x01
 *   str entryId, str sourceService, str tenantId, str action, str actorKind, str actorId
 *   u32 count, then count × str   resourceIds (order kept: it is part of what was recorded)
 *   str purposeCode, str ticketRef, str outcome, str traceId
 *   u64 occurredAt (milliseconds since the Unix epoch)
 * where str = u32 byte length ‖ UTF-8 bytes. Nothing may follow. Each entry has exactly one encoding, and the
 * decoder accepts only that encoding, so decode(encode(e)) = e and encode(decode(b)) = b.
 *
 * Entries hold ids and codes only: `validateAuditEntry` refuses free text and anything shaped like an email
 * address or phone number, because the log is immutable and personal data written into it could never be erased.
 */

export const AUDIT_ENTRY_VERSION = 1;

export const ACTOR_KINDS = ['operator', 'service'] as const;
export type ActorKind = (typeof ACTOR_KINDS)[number];

export const AUDIT_OUTCOMES = ['granted', 'denied', 'failed', 'succeeded'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/** One audit record: who did what to which resources, why, and with what outcome. Ids and codes only. */
export interface AuditEntry {
  readonly entryId: string;
  readonly sourceService: string;
  readonly tenantId: string;
  readonly action: string;
  readonly actorKind: ActorKind;
  readonly actorId: string;
  readonly resourceIds: readonly string[];
  /** Code from the configured purpose list; empty when the action has no purpose (e.g. a login). */
  readonly purposeCode: string;
  /** Ticket reference such as `SEC-1234`, or empty. */
  readonly ticketRef: string;
  readonly outcome: AuditOutcome;
  /** W3C trace id (32 lowercase hex digits), or empty. */
  readonly traceId: string;
  /** Milliseconds since the Unix epoch. */
  readonly occurredAt: number;
}

const FIELD_ORDER = [
  'entryId',
  'sourceService',
  'tenantId',
  'action',
  'actorKind',
  'actorId',
  'resourceIds',
  'purposeCode',
  'ticketRef',
  'outcome',
  'traceId',
  'occurredAt',
] as const satisfies readonly (keyof AuditEntry)[];

const STRING_FIELDS_BEFORE = ['entryId', 'sourceService', 'tenantId', 'action', 'actorKind', 'actorId'] as const;
const STRING_FIELDS_AFTER = ['purposeCode', 'ticketRef', 'outcome', 'traceId'] as const;

export type AuditEntryErrorCode = 'INVALID_AUDIT_ENTRY' | 'MALFORMED_AUDIT_ENTRY' | 'UNSUPPORTED_AUDIT_ENTRY_VERSION';

/** One refused field. `message` names the field and the rule, never the value. */
export interface AuditEntryIssue {
  readonly field: string;
  readonly code:
    | 'REQUIRED'
    | 'TYPE'
    | 'PATTERN'
    | 'NOT_ALLOWED'
    | 'LOOKS_LIKE_EMAIL'
    | 'LOOKS_LIKE_PHONE'
    | 'TOO_MANY'
    | 'UNKNOWN_FIELD';
  readonly message: string;
}

/** An entry was refused or its bytes are not a canonical encoding. Never carries field values. */
export class AuditEntryError extends Error {
  override readonly name = 'AuditEntryError';
  constructor(
    readonly code: AuditEntryErrorCode,
    message: string,
    readonly issues: readonly AuditEntryIssue[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Encoding

const U32_MAX = 0xffff_ffff;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function malformed(message: string, field?: string): AuditEntryError {
  return new AuditEntryError(
    'MALFORMED_AUDIT_ENTRY',
    field ? `${field}: ${message}` : message,
    field ? [{ field, code: 'TYPE', message }] : [],
  );
}

// Surrogates are U+D800–U+DFFF; a string without any cannot hold a lone one. This cheap scan runs once per
// field of every appended entry, so the lookbehind regex only runs for strings that do contain surrogates.
const ANY_SURROGATE = /[\uD800-\uDFFF]/;

function requireString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw malformed('must be a string', field);
  // A lone surrogate would encode as U+FFFD and not round-trip.
  if (ANY_SURROGATE.test(value) && LONE_SURROGATE.test(value)) throw malformed('is not well-formed Unicode', field);
  return value;
}

/**
 * Canonical bytes of an entry. Checks structure only (types, counts, timestamp range); apply
 * `validateAuditEntry` first for content rules. Throws AuditEntryError MALFORMED_AUDIT_ENTRY.
 */
export function encodeAuditEntry(entry: AuditEntry): Buffer {
  if (typeof entry !== 'object' || entry === null) throw malformed('entry must be an object');
  // Strings are measured, then written straight into one buffer: this runs once per appended entry. Plain loops,
  // no per-call closures (allocation, and a name helper per closure under the TS runtimes).
  const nBefore = STRING_FIELDS_BEFORE.length;
  const strs: string[] = [];
  for (const f of STRING_FIELDS_BEFORE) strs.push(requireString(entry[f], f));
  if (!Array.isArray(entry.resourceIds)) throw malformed('must be an array', 'resourceIds');
  const nResources = entry.resourceIds.length;
  if (nResources > U32_MAX) throw malformed('has too many items', 'resourceIds');
  for (let i = 0; i < nResources; i++) strs.push(requireString(entry.resourceIds[i], `resourceIds[${i}]`));
  for (const f of STRING_FIELDS_AFTER) strs.push(requireString(entry[f], f));
  if (!Number.isSafeInteger(entry.occurredAt) || entry.occurredAt < 0) {
    throw malformed('must be a non-negative integer number of milliseconds', 'occurredAt');
  }
  let total = 1 + 4 + 8;
  const lengths = new Array<number>(strs.length);
  for (let k = 0; k < strs.length; k++) {
    const n = Buffer.byteLength(strs[k]!, 'utf8');
    if (n > U32_MAX) throw malformed('a field is longer than 2^32 − 1 bytes');
    lengths[k] = n;
    total += 4 + n;
  }
  const out = Buffer.allocUnsafe(total);
  let at = out.writeUInt8(AUDIT_ENTRY_VERSION, 0);
  for (let k = 0; k < strs.length; k++) {
    // The resource count sits between the header strings and the resource ids.
    if (k === nBefore) at = out.writeUInt32BE(nResources, at);
    at = out.writeUInt32BE(lengths[k]!, at);
    at += out.write(strs[k]!, at, 'utf8');
  }
  at = out.writeBigUInt64BE(BigInt(entry.occurredAt), at);
  if (at !== total) throw new Error('audit entry encoder wrote an unexpected length');
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parses canonical entry bytes. Refuses unknown versions (UNSUPPORTED_AUDIT_ENTRY_VERSION), and truncated,
 * overlong, non-UTF-8 or trailing data, unknown actor kinds or outcomes (MALFORMED_AUDIT_ENTRY).
 */
export function decodeAuditEntry(bytes: Uint8Array): AuditEntry {
  if (!(bytes instanceof Uint8Array)) throw malformed('entry bytes must be a Uint8Array');
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 1) throw malformed('entry is empty');
  const version = buf.readUInt8(0);
  if (version !== AUDIT_ENTRY_VERSION) {
    throw new AuditEntryError('UNSUPPORTED_AUDIT_ENTRY_VERSION', `audit entry version ${version} is not supported`);
  }
  let at = 1;
  const need = (n: number, field: string): void => {
    if (buf.length - at < n) throw malformed('is truncated', field);
  };
  const u32 = (field: string): number => {
    need(4, field);
    const v = buf.readUInt32BE(at);
    at += 4;
    return v;
  };
  const str = (field: string): string => {
    const len = u32(field);
    need(len, field);
    let s: string;
    try {
      s = utf8.decode(buf.subarray(at, at + len));
    } catch (cause) {
      throw new AuditEntryError('MALFORMED_AUDIT_ENTRY', `${field}: is not valid UTF-8`, [], { cause });
    }
    at += len;
    return s;
  };
  const head: Record<string, string> = {};
  for (const f of STRING_FIELDS_BEFORE) head[f] = str(f);
  const count = u32('resourceIds');
  // Each item needs at least its 4-byte length: refuses absurd counts before allocating anything.
  if (count > (buf.length - at) / 4) throw malformed('count exceeds the remaining bytes', 'resourceIds');
  const resourceIds: string[] = [];
  for (let i = 0; i < count; i++) resourceIds.push(str(`resourceIds[${i}]`));
  const tail: Record<string, string> = {};
  for (const f of STRING_FIELDS_AFTER) tail[f] = str(f);
  need(8, 'occurredAt');
  const t = buf.readBigUInt64BE(at);
  at += 8;
  if (t > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed('is beyond the safe integer range', 'occurredAt');
  if (at !== buf.length) throw malformed('trailing bytes after the entry');
  const actorKind = head.actorKind!;
  const outcome = tail.outcome!;
  if (!(ACTOR_KINDS as readonly string[]).includes(actorKind))
    throw malformed('is not a known actor kind', 'actorKind');
  if (!(AUDIT_OUTCOMES as readonly string[]).includes(outcome)) throw malformed('is not a known outcome', 'outcome');
  return {
    entryId: head.entryId!,
    sourceService: head.sourceService!,
    tenantId: head.tenantId!,
    action: head.action!,
    actorKind: actorKind as ActorKind,
    actorId: head.actorId!,
    resourceIds,
    purposeCode: tail.purposeCode!,
    ticketRef: tail.ticketRef!,
    outcome: outcome as AuditOutcome,
    traceId: tail.traceId!,
    occurredAt: Number(t),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Validation

/** Content rules for entries; every pattern is replaceable (e.g. from configuration). */
export interface AuditEntryRules {
  /** entryId, tenantId, actorId, each resource id. */
  readonly idPattern: RegExp;
  /** action and sourceService. */
  readonly codePattern: RegExp;
  /** purposeCode when not empty. */
  readonly purposeCodePattern: RegExp;
  /** When set, a non-empty purposeCode must be one of these. */
  readonly allowedPurposeCodes?: ReadonlySet<string>;
  /** ticketRef when not empty. */
  readonly ticketRefPattern: RegExp;
  /** traceId when not empty. */
  readonly traceIdPattern: RegExp;
  readonly maxResourceIds: number;
  /** Applied to every string: a match is refused as an email address. */
  readonly emailPattern: RegExp;
  /** Applied to every string: a match with 7–15 digits (the E.164 range) is refused as a phone number. */
  readonly phonePattern: RegExp;
}

export const DEFAULT_AUDIT_ENTRY_RULES: AuditEntryRules = Object.freeze({
  idPattern: /^[A-Za-z0-9._:@/-]{1,128}$/,
  codePattern: /^[a-z][a-z0-9._-]{0,63}$/,
  purposeCodePattern: /^[a-z][a-z0-9._-]{0,63}$/,
  ticketRefPattern: /^[A-Z][A-Z0-9]{1,9}-[0-9]{1,9}$/,
  traceIdPattern: /^[0-9a-f]{32}$/,
  maxResourceIds: 1000,
  emailPattern: /@.*\./,
  phonePattern: /^\+?[0-9][0-9 ()-]{6,}$/,
});

// `test` on a /g or /y pattern is stateful (lastIndex); strip those flags so a configured pattern cannot flap.
function stateless(p: RegExp): RegExp {
  return p.global || p.sticky ? new RegExp(p.source, p.flags.replace(/[gy]/g, '')) : p;
}

function looksLikePhone(value: string, rules: AuditEntryRules): boolean {
  if (!rules.phonePattern.test(value)) return false;
  // Digit count keeps long numeric ids (UUIDs of digits, 19-digit snowflakes) from reading as phone numbers.
  const digits = value.replace(/[^0-9]/g, '').length;
  return digits >= 7 && digits <= 15;
}

export type AuditEntryValidation =
  | { readonly ok: true; readonly entry: AuditEntry }
  | { readonly ok: false; readonly issues: readonly AuditEntryIssue[] };

const SAFE_KEY = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const MAX_OCCURRED_AT = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

function issue(issues: AuditEntryIssue[], field: string, code: AuditEntryIssue['code'], rule: string): void {
  issues.push({ field, code, message: `${field}: ${rule}` });
}

// Module-level (not a closure per call): validation runs once per appended entry.
function checkText(
  r: AuditEntryRules,
  issues: AuditEntryIssue[],
  field: string,
  value: unknown,
  pattern: RegExp,
  rule: string,
  optional: boolean,
): void {
  if (typeof value !== 'string') return issue(issues, field, 'TYPE', 'must be a string');
  if (value === '') {
    if (!optional) issue(issues, field, 'REQUIRED', 'must not be empty');
    return;
  }
  // Personal-data shapes are checked first so the refusal says why, even when the pattern would also fail.
  if (r.emailPattern.test(value)) return issue(issues, field, 'LOOKS_LIKE_EMAIL', 'looks like an email address');
  if (looksLikePhone(value, r)) return issue(issues, field, 'LOOKS_LIKE_PHONE', 'looks like a phone number');
  if (!pattern.test(value)) issue(issues, field, 'PATTERN', `must be ${rule}`);
}

function resolveRules(rules: Partial<AuditEntryRules>): AuditEntryRules {
  const r0 = { ...DEFAULT_AUDIT_ENTRY_RULES, ...rules };
  return {
    ...r0,
    idPattern: stateless(r0.idPattern),
    codePattern: stateless(r0.codePattern),
    purposeCodePattern: stateless(r0.purposeCodePattern),
    ticketRefPattern: stateless(r0.ticketRefPattern),
    traceIdPattern: stateless(r0.traceIdPattern),
    emailPattern: stateless(r0.emailPattern),
    phonePattern: stateless(r0.phonePattern),
  };
}

// Validation runs once per appended entry: resolving the rules (a spread and seven pattern checks) per call was a
// visible share of it. Resolved once for the defaults, and once per caller's rules object (the appender passes the
// same one every time); rule objects are read-only by type.
const DEFAULT_RESOLVED = resolveRules({});
const resolvedRules = new WeakMap<Partial<AuditEntryRules>, AuditEntryRules>();

function rulesFor(rules: Partial<AuditEntryRules> | undefined): AuditEntryRules {
  if (rules === undefined) return DEFAULT_RESOLVED;
  let r = resolvedRules.get(rules);
  if (!r) {
    // `{}` (a fresh default argument per call upstream) means the defaults: nothing to resolve or remember.
    if (Object.keys(rules).length === 0) return DEFAULT_RESOLVED;
    r = resolveRules(rules);
    resolvedRules.set(rules, r);
  }
  return r;
}

const FIELD_SET: ReadonlySet<string> = new Set(FIELD_ORDER);

/**
 * Checks an entry against the content rules. Returns every refused field by name (values are never echoed),
 * or a clean copy holding only the known fields.
 */
export function validateAuditEntry(input: unknown, rules?: Partial<AuditEntryRules>): AuditEntryValidation {
  const r = rulesFor(rules);
  const issues: AuditEntryIssue[] = [];
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, issues: [{ field: 'entry', code: 'TYPE', message: 'entry: must be an object' }] };
  }
  const e = input as Record<string, unknown>;

  // Extra properties would be silently dropped by the encoder; refusing them keeps callers from believing
  // a free-text "note" was recorded. Key names are shown only when they look like identifiers.
  for (const key of Object.keys(e)) {
    if (!FIELD_SET.has(key)) {
      issue(issues, SAFE_KEY.test(key) ? key : '(unnamed field)', 'UNKNOWN_FIELD', 'is not an audit entry field');
    }
  }

  const id = 'an id matching the id pattern';
  const code = 'a code matching the code pattern';
  checkText(r, issues, 'entryId', e.entryId, r.idPattern, id, false);
  checkText(r, issues, 'sourceService', e.sourceService, r.codePattern, code, false);
  checkText(r, issues, 'tenantId', e.tenantId, r.idPattern, id, false);
  checkText(r, issues, 'action', e.action, r.codePattern, code, false);
  if (!(ACTOR_KINDS as readonly unknown[]).includes(e.actorKind)) {
    issue(issues, 'actorKind', 'NOT_ALLOWED', `must be one of ${ACTOR_KINDS.join(', ')}`);
  }
  checkText(r, issues, 'actorId', e.actorId, r.idPattern, id, false);
  if (!Array.isArray(e.resourceIds)) {
    issue(issues, 'resourceIds', 'TYPE', 'must be an array');
  } else if (e.resourceIds.length > r.maxResourceIds) {
    issue(issues, 'resourceIds', 'TOO_MANY', `must hold at most ${r.maxResourceIds} ids`);
  } else {
    for (let i = 0; i < e.resourceIds.length; i++) {
      checkText(r, issues, `resourceIds[${i}]`, e.resourceIds[i], r.idPattern, id, false);
    }
  }
  checkText(
    r,
    issues,
    'purposeCode',
    e.purposeCode,
    r.purposeCodePattern,
    'a purpose code matching the purpose pattern, or empty',
    true,
  );
  if (
    typeof e.purposeCode === 'string' &&
    e.purposeCode !== '' &&
    r.allowedPurposeCodes &&
    !r.allowedPurposeCodes.has(e.purposeCode) &&
    !issues.some((i) => i.field === 'purposeCode')
  ) {
    issue(issues, 'purposeCode', 'NOT_ALLOWED', 'is not a configured purpose code');
  }
  checkText(
    r,
    issues,
    'ticketRef',
    e.ticketRef,
    r.ticketRefPattern,
    'a ticket reference matching the ticket pattern, or empty',
    true,
  );
  if (!(AUDIT_OUTCOMES as readonly unknown[]).includes(e.outcome)) {
    issue(issues, 'outcome', 'NOT_ALLOWED', `must be one of ${AUDIT_OUTCOMES.join(', ')}`);
  }
  checkText(
    r,
    issues,
    'traceId',
    e.traceId,
    r.traceIdPattern,
    'a trace id matching the trace id pattern, or empty',
    true,
  );
  if (typeof e.occurredAt !== 'number' || !Number.isSafeInteger(e.occurredAt)) {
    issue(issues, 'occurredAt', 'TYPE', 'must be an integer number of milliseconds');
  } else if (e.occurredAt < 0 || e.occurredAt > MAX_OCCURRED_AT) {
    issue(issues, 'occurredAt', 'PATTERN', 'must lie between 1970 and 9999');
  }

  if (issues.length > 0) return { ok: false, issues };
  const clean: Record<string, unknown> = {};
  for (const f of FIELD_ORDER) clean[f] = f === 'resourceIds' ? [...(e[f] as string[])] : e[f];
  return { ok: true, entry: clean as unknown as AuditEntry };
}

/** validateAuditEntry that throws AuditEntryError INVALID_AUDIT_ENTRY (message lists field names and rules only). */
export function assertValidAuditEntry(input: unknown, rules: Partial<AuditEntryRules> = {}): AuditEntry {
  const result = validateAuditEntry(input, rules);
  if (result.ok) return result.entry;
  const shown = result.issues.slice(0, 10).map((i) => i.message);
  const more = result.issues.length > shown.length ? `; and ${result.issues.length - shown.length} more` : '';
  throw new AuditEntryError('INVALID_AUDIT_ENTRY', `audit entry refused: ${shown.join('; ')}${more}`, result.issues);
}

/** The entry's fields in canonical order (for adapters that map entries to columns). */
export const AUDIT_ENTRY_FIELDS: readonly (keyof AuditEntry)[] = FIELD_ORDER;
