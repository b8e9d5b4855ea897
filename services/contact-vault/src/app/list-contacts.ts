import { assertTenantId, invalidField } from '../domain';
import { maskedViewOf, type MaskedContactView } from './masked-contact';
import type { VaultDeps } from './vault-deps';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

const TOKEN_PREFIX = 'v1';

/** Page tokens are opaque to callers and bound to the tenant they were issued for. */
export function encodePageToken(tenantId: string, after: string): string {
  return Buffer.from(`${TOKEN_PREFIX}\u0000${tenantId}\u0000${after}`, 'utf8').toString('base64url');
}

function decodePageToken(tenantId: string, token: string): string {
  const parts = Buffer.from(token, 'base64url').toString('utf8').split('\u0000');
  if (parts.length !== 3 || parts[0] !== TOKEN_PREFIX || parts[2] === '') {
    throw invalidField('page.page_token', 'is not a token this service issued');
  }
  if (parts[1] !== tenantId) throw invalidField('page.page_token', 'belongs to another listing');
  return parts[2]!;
}

export interface ListContactsResult {
  readonly contacts: MaskedContactView[];
  /** Empty on the last page. */
  readonly nextPageToken: string;
}

/** A masked page of a tenant's contacts in creation order. Throws VaultError INVALID_ARGUMENT. */
export async function listContacts(
  deps: VaultDeps,
  input: { tenantId: string; pageSize?: number; pageToken?: string },
): Promise<ListContactsResult> {
  assertTenantId(input.tenantId);
  const pageSize = input.pageSize === undefined || input.pageSize === 0 ? DEFAULT_PAGE_SIZE : input.pageSize;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
    throw invalidField('page.page_size', `must be 1–${MAX_PAGE_SIZE}`);
  }
  const after = input.pageToken ? decodePageToken(input.tenantId, input.pageToken) : undefined;
  const page = await deps.contacts.list(input.tenantId, { pageSize, ...(after !== undefined ? { after } : {}) });
  const contacts: MaskedContactView[] = [];
  for (const contact of page.contacts) contacts.push(await maskedViewOf(deps, contact));
  return {
    contacts,
    nextPageToken: page.nextAfter === undefined ? '' : encodePageToken(input.tenantId, page.nextAfter),
  };
}
