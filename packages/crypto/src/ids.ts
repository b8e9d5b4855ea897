// Tenant and contact ids go into KMS encryption contexts and AAD, which must hold ids only: the same
// conservative alphabet as `assertIdOnlyContext`, so an email address used as an id by mistake is refused.
const ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Throws a TypeError (a programming error) when `value` is not an id. */
export function assertId(what: 'tenantId' | 'contactId', value: string): void {
  if (typeof value !== 'string' || !ID.test(value)) {
    throw new TypeError(`${what} must be 1..128 characters of A-Z a-z 0-9 . _ : -`);
  }
}

/**
 * Writes an id (checked by `assertId`, so ASCII and at most 128 bytes) as uint16 big-endian length + bytes,
 * for unambiguous concatenation in AAD. Returns the offset after it.
 */
export function writeLengthPrefixedId(target: Buffer, id: string, offset: number): number {
  const length = id.length;
  target[offset] = length >>> 8;
  target[offset + 1] = length & 0xff;
  // Byte by byte: ids are short ASCII, and a loop beats a call into Buffer's string writer at this size.
  const at = offset + 2;
  for (let i = 0; i < length; i += 1) target[at + i] = id.charCodeAt(i);
  return at + length;
}
