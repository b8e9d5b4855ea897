import { sealpostMetrics } from './metrics';
import { startTestMetrics } from './test-metrics';

describe('startTestMetrics', () => {
  it('collects what instruments created after it record, and forgets the provider on shutdown', async () => {
    const recorded = startTestMetrics();
    const m = sealpostMetrics('crypto');
    m.counter('sealpost_kms_calls_total').add(2, { operation: 'decrypt', outcome: 'ok' });
    m.counter('sealpost_kms_calls_total').add(1, { operation: 'decrypt', outcome: 'refused' });
    expect(await recorded.sum('sealpost_kms_calls_total')).toBe(3);
    expect(await recorded.sum('sealpost_kms_calls_total', { outcome: 'ok' })).toBe(2);
    expect(await recorded.sum('sealpost_key_cache_total')).toBe(0);
    expect([...(await recorded.collect()).keys()]).toEqual(['sealpost_kms_calls_total']);
    await recorded.shutdown();

    const after = startTestMetrics();
    sealpostMetrics('crypto').counter('sealpost_kms_calls_total').add(1, { operation: 'encrypt', outcome: 'ok' });
    expect(await after.points('sealpost_kms_calls_total')).toEqual([
      { attributes: { operation: 'encrypt', outcome: 'ok' }, value: 1 },
    ]);
    await after.shutdown();
  });
});
