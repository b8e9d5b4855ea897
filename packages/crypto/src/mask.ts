import { parsePhoneNumberFromString } from 'libphonenumber-js/max';

const HIDDEN = '***';

/**
 * Masks an email for display: first character of the local part and of the domain, then the top-level
 * label: `maskEmail('jane@example.com') === 'j***@e***.com'`. Anything unparseable becomes '***'.
 */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at <= 0 || at === email.length - 1) return HIDDEN;
  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  const dot = domain.lastIndexOf('.');
  // Array.from keeps a non-BMP first character whole instead of showing half a surrogate pair.
  const localFirst = Array.from(local)[0] ?? '';
  const domainFirst = Array.from(domain)[0] ?? '';
  const tld = dot > 0 && dot < domain.length - 1 ? domain.slice(dot) : '';
  return `${localFirst}${HIDDEN}@${domainFirst}${HIDDEN}${tld}`;
}

/**
 * Masks an E.164 phone number, keeping the country calling code and the last 3 digits behind a fixed-width
 * mask (so the length is not revealed): `maskPhone('+447700900123') === '+44 ******123'`.
 */
export function maskPhone(phone: string): string {
  const parsed = parsePhoneNumberFromString(phone.trim(), { extract: false });
  const national = parsed?.nationalNumber ?? '';
  if (!parsed || national.length < 4) return HIDDEN;
  return `+${parsed.countryCallingCode} ******${national.slice(-3)}`;
}
