import { MemoryWindowedCounterStore, StorageError, type WindowedCounterStore } from '@sealpost/storage';
import { VaultError } from '../domain';
import { createSharedVaultQuotas } from './shared-vault-quotas';

const rules = {
  reveal: { limit: 2, windowMs: 60_000 },
  find: { limit: 3, windowMs: 60_000 },
  resolve: { limit: 100, windowMs: 3_600_000 },
  resolvePurpose: { limit: 50, windowMs: 86_400_000 },
};

describe('createSharedVaultQuotas', () => {
  it('draws each quota per key from the counters and refuses with QUOTA_EXCEEDED and a retry time', async () => {
    const counters = new MemoryWindowedCounterStore({ now: () => 1_000_000 });
    const quotas = createSharedVaultQuotas(rules, counters);
    await quotas.reveal.take('op-1', 1, 'reveal');
    await quotas.reveal.take('op-1', 1, 'export');
    await expect(quotas.reveal.take('op-1', 1, 'reveal')).rejects.toMatchObject({
      code: 'QUOTA_EXCEEDED',
      message: expect.stringMatching(/^reveal quota exceeded \(2 per 60 s\); retry in (60|61) s$/),
    });
    // Quotas and keys are independent of each other.
    await quotas.find.take('op-1', 3, 'find');
    await quotas.reveal.take('op-2', 2, 'reveal');
    await expect(quotas.resolve.take('dispatch', 101, 'resolve')).rejects.toBeInstanceOf(VaultError);
  });

  it('keeps no principal id or purpose in counter keys', async () => {
    const keys: string[] = [];
    // A recording stand-in; the real stores are proved by @sealpost/storage's contract suite.
    const counters: WindowedCounterStore = {
      take: async (key) => {
        keys.push(key);
        return { granted: true, used: 1 };
      },
      purgeExpired: async () => 0,
    };
    const quotas = createSharedVaultQuotas(rules, counters);
    await quotas.reveal.take('spiffe://sealpost.test/crm', 1, 'reveal');
    await quotas.resolvePurpose.take('t-acme/campaign-42', 1, 'resolve per purpose');
    expect(keys).toHaveLength(2);
    for (const key of keys) expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('fails closed, as a retryable refusal, when the counters stay contended', async () => {
    // Contention cannot be produced on demand against a real store; this stand-in fails as MongoDB's would.
    const counters: WindowedCounterStore = {
      take: async () => Promise.reject(new StorageError('STORAGE_CONTENDED', 'busy')),
      purgeExpired: async () => 0,
    };
    await expect(createSharedVaultQuotas(rules, counters).find.take('op-1', 1, 'find')).rejects.toMatchObject({
      code: 'QUOTA_EXCEEDED',
      message: 'find quota busy; retry in 1 s',
    });
  });
});
