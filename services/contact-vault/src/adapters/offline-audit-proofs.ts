import { VaultError } from '../domain';
import type { AuditProofs } from '../ports/audit-proofs';

/**
 * AuditProofs of the offline maintenance runtime (`openVaultRuntime`, used by `sealpost contacts sweep --dry-run`
 * and `reapply-erasures`): it never dials the audit service, so an erasure started there stops at its proof step with
 * AUDIT_UNAVAILABLE and no receipt. Its tombstone, ledger entry and shredded key stand; erasing the contact again
 * through the running vault resumes the operation and issues the receipt.
 */
export const OFFLINE_AUDIT_PROOFS: AuditProofs = {
  async awaitInclusion() {
    throw new VaultError(
      'AUDIT_UNAVAILABLE',
      'offline maintenance does not reach the audit service; erase through the running vault for a receipt',
    );
  },
};
