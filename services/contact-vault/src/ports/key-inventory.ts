/**
 * What the key store knows beyond crypto's DataKeyStore: which contacts still use a KEK version (the rotation job
 * rewraps them) and which tenant key versions are retired.
 */
export interface KeyInventory {
  /** Contact ids of the tenant whose data key is wrapped under `kekVersion`, in id order after `after`. */
  contactsUsingKek(tenantId: string, kekVersion: number, options: { after?: string; limit: number }): Promise<string[]>;
  countUsingKek(tenantId: string, kekVersion: number): Promise<number>;
  /** Data keys of the tenant (all versions). */
  countDataKeys(tenantId: string): Promise<number>;
  /** Marks a tenant key version retired (idempotent). */
  retire(tenantId: string, purpose: 'kek' | 'index', version: number, at: Date): Promise<void>;
  /** Versions retired for the tenant and purpose. */
  retired(tenantId: string, purpose: 'kek' | 'index'): Promise<number[]>;
  /**
   * The highest version stored for the tenant and purpose, read from the store (not a cache), or 0 when there is
   * none yet: a rotation decides from it whether it creates a version or resumes one.
   */
  latestVersion(tenantId: string, purpose: 'kek' | 'index'): Promise<number>;
  /** Every tenant that has a KEK (so every tenant that ever held a contact), sorted: the retention sweep's tenants. */
  tenants(): Promise<string[]>;
}
