/** Signed tree heads on the bus: only the audit service publishes them, on `sealpost.treehead.<logId>.signed`. */
import path from 'node:path';
import { tempDir, type TempDir } from '@sealpost/testkit';
import { EmbeddedBus } from '../src/embedded/embedded-bus';
import { createEnvelope } from '../src/envelope';
import { InvalidEnvelopeError, PublishNotAllowedError } from '../src/errors';
import { TREE_HEAD_STREAM, treeHeadSubject } from '../src/topology';

const treeHead = (logId = 'sealpost-audit', subject = treeHeadSubject(logId)) =>
  createEnvelope({
    type: 'audit.tree_head_signed',
    subject,
    tenant: logId,
    aggregateId: logId,
    aggregateVersion: 8,
    payload: new Uint8Array([1, 2, 3]),
  });

describe('tree heads on the embedded bus', () => {
  let dir: TempDir;
  let shared: EmbeddedBus;

  beforeAll(() => {
    dir = tempDir('sealpost-bus-treehead-');
    shared = EmbeddedBus.open(path.join(dir.path, 'bus.sqlite'));
  });

  afterAll(async () => {
    await shared?.close();
    dir?.cleanup();
  });

  it('the audit service creates the tree-head stream and publishes a head into it', async () => {
    const audit = shared.forService('audit');
    await audit.ensureStreams();
    const event = treeHead();
    await audit.publish(event);
    const [stored, ...rest] = shared.read(TREE_HEAD_STREAM);
    expect(rest).toHaveLength(0);
    expect(stored).toMatchObject({ subject: 'sealpost.treehead.sealpost-audit.signed' });
    expect(Buffer.from(stored!.payload)).toEqual(Buffer.from([1, 2, 3]));
    await audit.close();
  });

  it('no other service may publish a tree head', async () => {
    for (const service of ['contact-vault', 'consent', 'dispatch', 'anomaly', 'identity'] as const) {
      const bus = shared.forService(service);
      await expect(bus.publish(treeHead())).rejects.toThrow(PublishNotAllowedError);
      await bus.close();
    }
  });

  it('refuses other tree-head subjects and a tenant that is not the log id', () => {
    expect(() => treeHead('sealpost-audit', 'sealpost.treehead.sealpost-audit.forged')).toThrow(InvalidEnvelopeError);
    expect(() => treeHead('sealpost-audit', 'sealpost.treehead.sealpost-audit.signed.x')).toThrow(InvalidEnvelopeError);
    expect(() => treeHead('sealpost-audit', 'sealpost.treehead.other-log.signed')).toThrow(
      'subject tenant differs from envelope tenant',
    );
    expect(() => treeHeadSubject('a.b')).toThrow(RangeError);
  });
});
