import { InvalidBusOptionsError, UnsafeStreamConfigError } from './errors';
import { streamSpec, streamsOwnedBy } from './stream-config';

describe('stream specs', () => {
  it('makes the audit stream discard-new with delete and purge denied', () => {
    expect(streamSpec('audit')).toMatchObject({
      name: 'SEALPOST_AUDIT',
      subjects: ['sealpost.audit.>'],
      discard: 'new',
      denyDelete: true,
      denyPurge: true,
      storage: 'file',
      duplicateWindowMs: 120000,
    });
    expect(streamSpec('consent')).toMatchObject({ discard: 'old', denyDelete: false, denyPurge: false });
  });

  it('refuses audit replicas below the production minimum', () => {
    const call = () => streamSpec('audit', { minAuditReplicas: 3, perStream: { audit: { replicas: 2 } } });
    expect(call).toThrow(UnsafeStreamConfigError);
    expect(call).toThrow('2 replicas is below the required minimum of 3');
    expect(streamSpec('audit', { minAuditReplicas: 3, defaults: { replicas: 3 } }).replicas).toBe(3);
    // Other streams are not held to the audit minimum.
    expect(streamSpec('vault', { minAuditReplicas: 3 }).replicas).toBe(1);
  });

  it('refuses a max age shorter than the duplicate window', () => {
    expect(() => streamSpec('vault', { defaults: { maxAgeMs: 60_000 } })).toThrow(InvalidBusOptionsError);
  });

  it('lists the streams each service creates', () => {
    expect(streamsOwnedBy('consent').map((s) => s.name)).toEqual(['SEALPOST_CONSENT', 'SEALPOST_DEADLETTER']);
    expect(streamsOwnedBy('audit').map((s) => s.name)).toEqual([
      'SEALPOST_AUDIT',
      'SEALPOST_DEADLETTER',
      'SEALPOST_TREEHEAD',
    ]);
  });
});
