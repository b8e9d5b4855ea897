import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startTestMetrics, type TestMetrics } from '@sealpost/telemetry';
import { KmsUnavailableError } from '../errors';
import { KeyCache } from '../key-cache';
import { KeyHierarchy, InMemoryTenantKeyStore, kmsKeyIdResolver } from '../key-hierarchy';
import { createKeyManagementService } from './create-kms';
import type { KeyManagementService } from './key-management-service';
import { MeteredKms } from './metered-kms';

let recorded: TestMetrics;
let dir: string;
beforeEach(async () => {
  recorded = startTestMetrics();
  dir = await mkdtemp(path.join(tmpdir(), 'sealpost-kms-metrics-'));
});
afterEach(async () => {
  await recorded.shutdown();
  await rm(dir, { recursive: true, force: true });
});

const context = { tenant: 't1', purpose: 'kek' };

describe('sealpost_kms_calls_total', () => {
  it('counts each call of the configured KMS by operation and outcome', async () => {
    const kms = await createKeyManagementService({
      mode: 'development',
      kms: { kind: 'local', keyringPath: path.join(dir, 'k.json') },
    });
    const blob = await kms.encrypt('tenant-t1', new Uint8Array(32).fill(1), context);
    await kms.decrypt('tenant-t1', blob, context);
    await expect(kms.decrypt('tenant-t1', blob, { ...context, purpose: 'index' })).rejects.toThrow();
    await kms.generateDataKey?.('tenant-t1', context);
    expect(await recorded.points('sealpost_kms_calls_total')).toEqual(
      expect.arrayContaining([
        { attributes: { operation: 'encrypt', outcome: 'ok' }, value: 1 },
        { attributes: { operation: 'decrypt', outcome: 'ok' }, value: 1 },
        { attributes: { operation: 'decrypt', outcome: 'refused' }, value: 1 },
        { attributes: { operation: 'generate_data_key', outcome: 'ok' }, value: 1 },
      ]),
    );
    expect(await recorded.sum('sealpost_kms_calls_total')).toBe(4);
  });

  it('counts an outage as unavailable and rethrows it', async () => {
    const down: KeyManagementService = {
      encrypt: () => Promise.reject(new KmsUnavailableError('unreachable')),
      decrypt: () => Promise.reject(new KmsUnavailableError('unreachable')),
    };
    const kms = new MeteredKms(down);
    expect(kms.generateDataKey).toBeUndefined();
    await expect(kms.decrypt('k', new Uint8Array(1), context)).rejects.toBeInstanceOf(KmsUnavailableError);
    expect(await recorded.points('sealpost_kms_calls_total')).toEqual([
      { attributes: { operation: 'decrypt', outcome: 'unavailable' }, value: 1 },
    ]);
  });
});

describe('sealpost_key_cache_total', () => {
  it('counts one outcome per lookup: miss, hit, expired', async () => {
    let now = 0;
    const cache = new KeyCache<string>({ maxAgeMs: 100, maxUses: 10, now: () => now, kind: 'kek' });
    const load = async () => 'key';
    await cache.get('a', load); // miss
    expect(cache.getCached('a')).toBe('key'); // hit
    await cache.get('a', load); // hit
    now = 200;
    expect(cache.getCached('a')).toBeUndefined(); // not counted: the get that follows counts it
    await cache.get('a', load); // expired
    const count = (outcome: string) => recorded.sum('sealpost_key_cache_total', { kind: 'kek', outcome });
    expect([await count('miss'), await count('hit'), await count('expired')]).toEqual([1, 2, 1]);
    expect(cache.stats()).toMatchObject({ hits: 2, misses: 2, expiredByAge: 1, loads: 2 });
  });

  it('a key hierarchy over the configured KMS unwraps once, then hits its cache', async () => {
    const kms = await createKeyManagementService({
      mode: 'development',
      kms: { kind: 'local', keyringPath: path.join(dir, 'k.json') },
    });
    const store = new InMemoryTenantKeyStore();
    const writer = new KeyHierarchy({
      kms,
      tenantKeys: store,
      kmsKeyIdFor: kmsKeyIdResolver({ template: 'tenant-{tenant}' }),
    });
    await writer.currentKek('t1');
    // Another replica: its cache is cold, so the first read unwraps through KMS.
    const reader = new KeyHierarchy({
      kms,
      tenantKeys: store,
      kmsKeyIdFor: kmsKeyIdResolver({ template: 'tenant-{tenant}' }),
    });
    await reader.currentKek('t1');
    await reader.currentKek('t1');
    expect(await recorded.sum('sealpost_kms_calls_total', { operation: 'decrypt', outcome: 'ok' })).toBe(1);
    expect(await recorded.sum('sealpost_key_cache_total', { kind: 'kek', outcome: 'hit' })).toBeGreaterThanOrEqual(1);
    expect(await recorded.sum('sealpost_key_cache_total', { kind: 'kek', outcome: 'miss' })).toBeGreaterThanOrEqual(1);
  });
});
