import { domainToASCII } from 'node:url';
import { isSupportedCountry, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import { InvalidFieldError } from './errors';

/**
 * Version of the normalisation rules in this file. Every blind index records it; any change to the rules
 * below must bump it, and becomes a re-index job (lookups consult both versions until the job finishes).
 *
 * A tenant changing its own options (alias folding, default region) changes the rules for that tenant
 * without changing this number: apply such a change together with an index-root rotation, so the
 * re-index machinery (keyVersion) covers it.
 */
export const NORM_VERSION = 1;

/** Per-tenant normalisation options. */
export interface NormalizationPolicy {
  /** ISO 3166-1 alpha-2 region for national-format phone numbers ("07911 123456" with 'GB'). */
  defaultRegion?: string;
  /** Fold provider aliases (gmail dots and +tags, +tags at a few other providers). Off by default. */
  foldEmailAliases?: boolean;
}

/** An email address produced by `normalizeEmail`; only these may be blind-indexed. */
export type NormalizedEmail = string & { readonly __normalized: 'email' };
/** An E.164 phone number produced by `normalizePhone`. */
export type NormalizedPhone = string & { readonly __normalized: 'phone' };

/** Normalised contact fields, ready for blind indexing; carries the rules version used. */
export interface NormalizedContactFields {
  email?: NormalizedEmail;
  phone?: NormalizedPhone;
  normVersion: number;
}

// Local parts with these characters need quoting under RFC 5322; quoted local parts are refused as
// unsupported (they are vanishingly rare in marketing lists and make equality ambiguous).
const LOCAL_FORBIDDEN = /[\s\p{Cc}"(),:;<>@[\\\]]/u;
const DOMAIN_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

// Providers whose folding is documented: gmail ignores dots and +tags; the others deliver +tags to the
// base address. Applied only when the tenant turns folding on.
const DOT_AND_PLUS_PROVIDERS = new Set(['gmail.com', 'googlemail.com']);
const PLUS_PROVIDERS = new Set([
  'outlook.com',
  'hotmail.com',
  'live.com',
  'msn.com',
  'icloud.com',
  'me.com',
  'mac.com',
  'fastmail.com',
  'fastmail.fm',
  'protonmail.com',
  'proton.me',
  'pm.me',
]);

/**
 * Trims, NFC-normalises and lower-cases an email address, converts an IDN domain to punycode, and folds
 * provider aliases if the policy says so. Throws `InvalidFieldError` (field 'email'), never echoing the value.
 */
export function normalizeEmail(value: string, policy: NormalizationPolicy = {}): NormalizedEmail {
  if (typeof value !== 'string') throw new InvalidFieldError('email', 'not a string');
  const text = value.normalize('NFC').trim().toLowerCase();
  if (text.length === 0) throw new InvalidFieldError('email', 'empty');
  if (text.length > 320) throw new InvalidFieldError('email', 'too long');
  const at = text.lastIndexOf('@');
  if (at <= 0 || at === text.length - 1) throw new InvalidFieldError('email', 'must be local-part@domain');
  let local = text.slice(0, at);
  const rawDomain = text.slice(at + 1);
  if (LOCAL_FORBIDDEN.test(local)) throw new InvalidFieldError('email', 'local part has forbidden characters');
  if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) {
    throw new InvalidFieldError('email', 'local part has misplaced dots');
  }
  let domain = toAsciiDomain(rawDomain);

  if (policy.foldEmailAliases) {
    if (DOT_AND_PLUS_PROVIDERS.has(domain)) {
      local = stripPlusTag(local).replaceAll('.', '');
      domain = 'gmail.com';
    } else if (PLUS_PROVIDERS.has(domain)) {
      local = stripPlusTag(local);
    }
    if (local.length === 0) throw new InvalidFieldError('email', 'local part is empty after folding');
  }
  if (Buffer.byteLength(local, 'utf8') > 64) throw new InvalidFieldError('email', 'local part too long');
  const email = `${local}@${domain}`;
  if (Buffer.byteLength(email, 'utf8') > 254) throw new InvalidFieldError('email', 'too long');
  return email as NormalizedEmail;
}

/**
 * Parses a phone number to E.164 using the policy's default region for national formats. Throws
 * `InvalidFieldError` (field 'phone') for anything that is not a valid, extension-free number.
 */
export function normalizePhone(value: string, policy: NormalizationPolicy = {}): NormalizedPhone {
  if (typeof value !== 'string') throw new InvalidFieldError('phone', 'not a string');
  const text = value.normalize('NFKC').trim();
  if (text.length === 0) throw new InvalidFieldError('phone', 'empty');
  if (text.length > 64) throw new InvalidFieldError('phone', 'too long');
  const region = defaultRegion(policy);
  const parsed = parsePhoneNumberFromString(text, { ...(region ? { defaultCountry: region } : {}), extract: false });
  if (!parsed) throw new InvalidFieldError('phone', 'not a phone number (or no default region for a national number)');
  if (parsed.ext) throw new InvalidFieldError('phone', 'extensions are not supported');
  if (!parsed.isValid()) throw new InvalidFieldError('phone', 'not a valid number for its region');
  return parsed.number as NormalizedPhone;
}

/** Normalises the indexable fields present in `input`; absent or null fields are skipped. */
export function normalizeContactFields(
  input: { email?: string | null; phone?: string | null },
  policy: NormalizationPolicy = {},
): NormalizedContactFields {
  const out: NormalizedContactFields = { normVersion: NORM_VERSION };
  if (input.email !== undefined && input.email !== null) out.email = normalizeEmail(input.email, policy);
  if (input.phone !== undefined && input.phone !== null) out.phone = normalizePhone(input.phone, policy);
  return out;
}

function toAsciiDomain(rawDomain: string): string {
  if (rawDomain.startsWith('[')) throw new InvalidFieldError('email', 'address literals are not supported');
  const domain = domainToASCII(rawDomain);
  if (!domain || domain.length > 253) throw new InvalidFieldError('email', 'invalid domain');
  const labels = domain.split('.');
  if (labels.length < 2 || !labels.every((label) => DOMAIN_LABEL.test(label))) {
    throw new InvalidFieldError('email', 'invalid domain');
  }
  // An all-digit top-level label means an IP address, not a mailbox domain.
  if (/^[0-9]+$/.test(labels[labels.length - 1] ?? '')) throw new InvalidFieldError('email', 'invalid domain');
  return domain;
}

function stripPlusTag(local: string): string {
  const plus = local.indexOf('+');
  return plus === -1 ? local : local.slice(0, plus);
}

function defaultRegion(policy: NormalizationPolicy): CountryCode | undefined {
  if (policy.defaultRegion === undefined) return undefined;
  // A bad region is a configuration bug, not bad input: do not blame the caller's value.
  if (!isSupportedCountry(policy.defaultRegion)) throw new RangeError('Unsupported default phone region in policy');
  return policy.defaultRegion;
}
