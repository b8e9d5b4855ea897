/** Canary personal data and a scanner that looks for it (plain, and as unkeyed SHA-256 hex/base64) in bytes. */
import { createHash } from 'node:crypto';

export interface Canary {
  /** As sent by a client. */
  readonly rawEmail: string;
  readonly rawPhone: string;
  /** As the vault normalises them. */
  readonly email: string;
  readonly phone: string;
}

/** `count` (≤ 1000) distinct canary contacts: valid UK mobile numbers (libphonenumber rejects the Ofcom drama range), a reserved example domain. */
export function canaries(count: number, tag = 'cny'): Canary[] {
  return Array.from({ length: count }, (_, i) => {
    const n = String(i).padStart(3, '0');
    return {
      rawEmail: `  ${tag.toUpperCase()}.Person${n}@Vault-Canary.Example `,
      rawPhone: `+44 7911 000${n}`,
      email: `${tag}.person${n}@vault-canary.example`,
      phone: `+447911000${n}`,
    };
  });
}

/** Every form of a value that must never be stored or published. */
export function forbiddenForms(values: readonly string[]): string[] {
  const out = new Set<string>();
  for (const v of values) {
    for (const form of [v, v.trim()]) {
      const digest = createHash('sha256').update(form, 'utf8').digest();
      out.add(form);
      out.add(digest.toString('hex'));
      out.add(digest.toString('base64'));
      out.add(digest.toString('base64url'));
    }
  }
  return [...out];
}

/**
 * The forbidden strings found in `haystack` (latin1 view, so UTF-8 text and raw bytes are both searched). One
 * sliding-window pass per distinct needle length, with a set lookup: fast enough for thousands of needles.
 */
export function findForbidden(haystack: Buffer, needles: readonly string[]): string[] {
  const text = haystack.toString('latin1');
  const byLength = new Map<number, Set<string>>();
  for (const n of needles) {
    const bytes = Buffer.from(n, 'utf8').toString('latin1');
    const set = byLength.get(bytes.length) ?? new Set<string>();
    set.add(bytes);
    byLength.set(bytes.length, set);
  }
  const found = new Set<string>();
  for (const [length, set] of byLength) {
    for (let i = 0; i + length <= text.length; i++) {
      const window = text.substr(i, length);
      if (set.has(window)) found.add(window);
    }
  }
  return [...found];
}
