/**
 * Zod schemas for the kinds of value a `SEALPOST_*` variable holds. Every message describes what is
 * expected and never repeats the value it got: a value may be a secret that was put in the wrong place.
 */
import { z } from 'zod';

export type ValueSchema<T> = z.ZodType<T, string>;

export function oneOf<const T extends readonly [string, ...string[]]>(values: T): ValueSchema<T[number]> {
  return z.enum(values, { error: `must be one of ${values.join(', ')}` });
}

/** Digits only, within [min, max]: no signs, decimals, exponents or blanks, so nothing turns into NaN. */
export function wholeNumber(min: number, max: number): ValueSchema<number> {
  return z
    .string()
    .regex(/^[0-9]{1,15}$/, { error: `must be a whole number from ${min} to ${max} (digits only)` })
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(min, { error: `must be at least ${min}` })
        .max(max, { error: `must be at most ${max}` }),
    );
}

export const booleanFlag: ValueSchema<boolean> = z
  .enum(['true', 'false'], { error: "must be 'true' or 'false'" })
  .transform((value) => value === 'true');

const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)$/;

/** `host:port` with a port from 1 to 65535 (IPv6 hosts in brackets). */
export const hostPort: ValueSchema<string> = z.string().transform((value, ctx) => {
  const colon = value.lastIndexOf(':');
  const host = value.slice(0, colon);
  const port = value.slice(colon + 1);
  if (colon <= 0 || !HOST.test(host) || !/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    ctx.addIssue({ code: 'custom', message: 'must be host:port with a port from 1 to 65535' });
    return z.NEVER;
  }
  return value;
});

/** An absolute URL with one of the given schemes; with `noPassword`, refuses credentials in it. */
export function url(schemes: readonly string[], options: { noPassword?: boolean } = {}): ValueSchema<string> {
  return z.string().transform((value, ctx) => {
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: `must be a URL (${schemes.map((s) => `${s}://`).join(', ')})` });
      return z.NEVER;
    }
    if (!schemes.includes(parsed.protocol.slice(0, -1))) {
      ctx.addIssue({ code: 'custom', message: `must use one of the schemes ${schemes.join(', ')}` });
      return z.NEVER;
    }
    if (options.noPassword && parsed.password !== '') {
      ctx.addIssue({ code: 'custom', message: 'must not contain a password; put it in the matching *_PASSWORD_FILE' });
      return z.NEVER;
    }
    return value;
  });
}

/** A comma list of URLs (NATS accepts several seed servers). */
export function urlList(schemes: readonly string[]): ValueSchema<readonly string[]> {
  const one = url(schemes, { noPassword: true });
  return z.string().transform((value, ctx) => {
    const items = value.split(',').map((item) => item.trim());
    const out: string[] = [];
    for (const item of items) {
      const result = one.safeParse(item);
      if (!result.success) {
        ctx.addIssue({
          code: 'custom',
          message: `each comma-separated entry ${result.error.issues[0]?.message ?? 'is invalid'}`,
        });
        return z.NEVER;
      }
      out.push(result.data);
    }
    return out;
  });
}

/** SPIFFE trust domain: lower-case DNS-like name. */
export const trustDomain: ValueSchema<string> = z
  .string()
  .max(255, { error: 'must be at most 255 characters' })
  .regex(/^[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?)*$/, {
    error: 'must be a lower-case trust domain such as prod.example.com',
  });

/** Kubernetes namespace name (RFC 1123 label). */
export const namespaceName: ValueSchema<string> = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, { error: 'must be a Kubernetes namespace name' });

export const pathValue: ValueSchema<string> = z.string().refine((value) => !value.includes('\0'), {
  error: 'must be a file path',
});

export const tokenValue: ValueSchema<string> = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, { error: 'must be a name of letters, digits, ".", "_" or "-"' });

export const serviceTag: ValueSchema<string> = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,62}$/, { error: 'must be a lower-case service name such as contact-vault' });

export const awsRegion: ValueSchema<string> = z
  .string()
  .regex(/^[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}$/, { error: 'must be an AWS region such as eu-west-1' });

const PURPOSE_CODE = /^[a-z][a-z0-9-]{1,63}$/;

export const purposeCodes: ValueSchema<readonly string[]> = z.string().transform((value, ctx) => {
  const codes = value.split(',').map((code) => code.trim());
  if (codes.some((code) => !PURPOSE_CODE.test(code))) {
    ctx.addIssue({
      code: 'custom',
      message: 'must be a comma list of codes of a-z, 0-9 and "-" (2–64 characters each)',
    });
    return z.NEVER;
  }
  if (new Set(codes).size !== codes.length) {
    ctx.addIssue({ code: 'custom', message: 'must not repeat a code' });
    return z.NEVER;
  }
  return codes;
});

// Strings the ticket pattern must refuse: a ticket reference lands in the immutable audit log, so a
// pattern loose enough to take an address, a phone number or a name would let personal data in forever.
const FREE_TEXT_PROBES = ['jane.doe@example.com', '+15551234567', 'Jane Doe', 'JIRA-1 call Jane', ''];

export const ticketPattern: ValueSchema<RegExp> = z.string().transform((value, ctx) => {
  let pattern: RegExp;
  try {
    pattern = new RegExp(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be a valid regular expression' });
    return z.NEVER;
  }
  if (!value.startsWith('^') || !value.endsWith('$') || value.endsWith('\\$')) {
    ctx.addIssue({ code: 'custom', message: 'must be anchored with ^ and $ so that it matches the whole reference' });
    return z.NEVER;
  }
  if (FREE_TEXT_PROBES.some((probe) => pattern.test(probe))) {
    ctx.addIssue({ code: 'custom', message: 'must not match free text (spaces, "@", "+" or an empty reference)' });
    return z.NEVER;
  }
  return pattern;
});

export const keyIdTemplate: ValueSchema<string> = z
  .string()
  .refine((value) => value.includes('{tenant}') && !/\s/.test(value), {
    error: 'must contain the {tenant} placeholder and no spaces, e.g. alias/sealpost-{tenant}',
  });

const TENANT_ID = /^[A-Za-z0-9_-]{1,64}$/;
const KEY_ID = /^[A-Za-z0-9:/_.+=-]{1,2048}$/;

/** One KMS key id, ARN or alias (`alias/…`): an identifier, not a secret. */
export const kmsKeyId: ValueSchema<string> = z
  .string()
  .regex(KEY_ID, { error: 'must be a KMS key id, key ARN or alias (alias/…)' });

/** `tenant=keyId,tenant=keyId`: keys are ids/ARNs, not secrets. */
export const keyMap: ValueSchema<Readonly<Record<string, string>>> = z.string().transform((value, ctx) => {
  const map: Record<string, string> = {};
  for (const entry of value.split(',')) {
    const eq = entry.indexOf('=');
    const tenant = entry.slice(0, eq).trim();
    const keyId = entry.slice(eq + 1).trim();
    if (eq <= 0 || !TENANT_ID.test(tenant) || !KEY_ID.test(keyId)) {
      ctx.addIssue({ code: 'custom', message: 'must be a comma list of tenant=keyId entries' });
      return z.NEVER;
    }
    if (Object.hasOwn(map, tenant)) {
      ctx.addIssue({ code: 'custom', message: 'must not list a tenant twice' });
      return z.NEVER;
    }
    map[tenant] = keyId;
  }
  return map;
});

/** A rate limit: `<count>/<window seconds>`, count 1–10^9, window 1 s–30 days. */
export const quota: ValueSchema<{ limit: number; windowSeconds: number }> = z.string().transform((value, ctx) => {
  const m = /^([0-9]{1,10})\/([0-9]{1,7})$/.exec(value);
  const limit = m ? Number(m[1]) : NaN;
  const windowSeconds = m ? Number(m[2]) : NaN;
  if (!m || limit < 1 || limit > 1e9 || windowSeconds < 1 || windowSeconds > 30 * 86400) {
    ctx.addIssue({
      code: 'custom',
      message: 'must be <count>/<window seconds>, e.g. 20/3600 (count ≥ 1, window ≤ 30 days)',
    });
    return z.NEVER;
  }
  return { limit, windowSeconds };
});

/** ISO 3166-1 alpha-2 region code (upper-case). */
export const regionCode: ValueSchema<string> = z
  .string()
  .regex(/^[A-Z]{2}$/, { error: 'must be an ISO 3166-1 alpha-2 region code in upper case, e.g. GB' });

const TENANT = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** Retention in days: `<days>` for every tenant, or `tenant=days,…` per tenant (days 1–36500). */
export const retentionDays: ValueSchema<{ all?: number; tenants: Record<string, number> }> = z
  .string()
  .transform((value, ctx) => {
    const days = (s: string): number | undefined =>
      /^[0-9]{1,5}$/.test(s) && Number(s) >= 1 && Number(s) <= 36500 ? Number(s) : undefined;
    if (/^[0-9]+$/.test(value)) {
      const all = days(value);
      if (all === undefined) {
        ctx.addIssue({ code: 'custom', message: 'must be a number of days from 1 to 36500' });
        return z.NEVER;
      }
      return { all, tenants: {} };
    }
    const tenants: Record<string, number> = {};
    for (const part of value.split(',')) {
      const [tenant, d, extra] = part.split('=');
      const n = d === undefined ? undefined : days(d);
      if (extra !== undefined || tenant === undefined || !TENANT.test(tenant) || n === undefined || tenant in tenants) {
        ctx.addIssue({ code: 'custom', message: 'must be <days> or tenant=days,… (each tenant once, days 1–36500)' });
        return z.NEVER;
      }
      tenants[tenant] = n;
    }
    return { tenants };
  });
