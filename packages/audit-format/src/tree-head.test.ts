import {
  type TreeHead,
  TreeHeadError,
  encodeTreeHeadPayload,
  parseTreeHeadPayload,
  treeHeadRoot,
  validateTreeHead,
} from './tree-head';

const head: TreeHead = {
  logId: 'sealpost/audit/prod-eu',
  treeSize: 1_000_000,
  rootHash: '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
  timestamp: 1_767_225_600_123,
};

function refused(fn: () => unknown, code: TreeHeadError['code'], mention?: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(TreeHeadError);
  expect((thrown as TreeHeadError).code).toBe(code);
  if (mention) expect((thrown as TreeHeadError).message).toContain(mention);
}

describe('tree head payload', () => {
  it('is JSON with sorted keys, no whitespace and integer numbers', () => {
    expect(encodeTreeHeadPayload(head).toString('utf8')).toBe(
      '{"logId":"sealpost/audit/prod-eu","rootHash":"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328","timestamp":1767225600123,"treeSize":1000000}',
    );
  });

  it('round-trips and exposes the root bytes', () => {
    const parsed = parseTreeHeadPayload(encodeTreeHeadPayload(head));
    expect(parsed).toEqual(head);
    expect(treeHeadRoot(parsed).toString('hex')).toBe(head.rootHash);
    const empty = { ...head, treeSize: 0, timestamp: 0 };
    expect(parseTreeHeadPayload(encodeTreeHeadPayload(empty))).toEqual(empty);
  });

  it('accepts only the canonical bytes of a head', () => {
    const canonical = encodeTreeHeadPayload(head).toString('utf8');
    const variants = [
      JSON.stringify(head), // insertion key order
      JSON.stringify(JSON.parse(canonical), null, 1),
      canonical.replace('"treeSize":1000000', '"treeSize":1e6'),
      canonical.replace('"treeSize":1000000', '"treeSize":1000000.0'),
      canonical.replace('{"logId"', '{"logId":"other","logId"'),
      canonical.replace('sealpost/audit', 'sealpost\\/audit'),
      ` ${canonical}`,
    ];
    for (const v of variants) refused(() => parseTreeHeadPayload(Buffer.from(v, 'utf8')), 'NON_CANONICAL_TREE_HEAD');
    // A byte-order mark is kept, so the text is not JSON at all.
    refused(() => parseTreeHeadPayload(Buffer.from(`\uFEFF${canonical}`, 'utf8')), 'INVALID_TREE_HEAD');
  });

  it('refuses malformed payloads and fields, naming the field', () => {
    const enc = (o: unknown): Buffer => Buffer.from(JSON.stringify(o), 'utf8');
    refused(() => parseTreeHeadPayload(Buffer.from('not json')), 'INVALID_TREE_HEAD');
    refused(() => parseTreeHeadPayload(Buffer.from([0x7b, 0xff, 0x7d])), 'INVALID_TREE_HEAD');
    refused(() => parseTreeHeadPayload(enc([head])), 'INVALID_TREE_HEAD');
    refused(() => parseTreeHeadPayload(enc({ ...head, extra: 1 })), 'INVALID_TREE_HEAD', 'payload');
    refused(() => parseTreeHeadPayload(enc({ ...head, treeSize: -1 })), 'INVALID_TREE_HEAD', 'treeSize');
    refused(() => parseTreeHeadPayload(enc({ ...head, treeSize: 2 ** 53 })), 'INVALID_TREE_HEAD', 'treeSize');
    refused(() => parseTreeHeadPayload(enc({ ...head, treeSize: '5' })), 'INVALID_TREE_HEAD', 'treeSize');
    refused(
      () => parseTreeHeadPayload(enc({ ...head, rootHash: head.rootHash.toUpperCase() })),
      'INVALID_TREE_HEAD',
      'rootHash',
    );
    refused(
      () => parseTreeHeadPayload(enc({ ...head, rootHash: head.rootHash.slice(2) })),
      'INVALID_TREE_HEAD',
      'rootHash',
    );
    refused(() => parseTreeHeadPayload(enc({ ...head, timestamp: 1.5 })), 'INVALID_TREE_HEAD', 'timestamp');
    refused(() => parseTreeHeadPayload(enc({ ...head, logId: 'log with spaces' })), 'INVALID_TREE_HEAD', 'logId');
    refused(() => parseTreeHeadPayload(enc({ ...head, logId: '' })), 'INVALID_TREE_HEAD', 'logId');
    refused(() => encodeTreeHeadPayload({ ...head, rootHash: 'zz' }), 'INVALID_TREE_HEAD', 'rootHash');
    refused(() => validateTreeHead(null), 'INVALID_TREE_HEAD');
  });
});
