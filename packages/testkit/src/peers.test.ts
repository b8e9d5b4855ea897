import { chmodSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import {
  PeerConfigError,
  PeerMissingError,
  addressOf,
  decidePeerGate,
  isCi,
  loadPeers,
  natsTlsConnectOptions,
  peerAvailable,
  requirePeer,
  type PeerName,
} from './peers';
import { cleanupTempDirs, tempDir } from './temp-dir';

const sample = {
  nats: { url: 'nats://127.0.0.1:4222' },
  natsTls: {
    url: 'tls://127.0.0.1:4223',
    ca: '/x/ca.pem',
    users: { consent: { user: 'consent', password: 'pw-consent' } },
    admin: { user: 'admin', password: 'pw-admin' },
  },
  mongo: { url: 'mongodb://127.0.0.1:27018/' },
  kms: { endpoint: 'http://127.0.0.1:4599', region: 'eu-west-1' },
  ses: { endpoint: 'http://127.0.0.1:8005' },
  natsCli: '/x/bin/nats',
};

function peersEnv(content: unknown, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const dir = tempDir();
  const file = join(dir.path, 'peers.json');
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return { SEALPOST_TEST_PEERS_FILE: file, ...extra };
}

afterAll(cleanupTempDirs);

describe('loadPeers', () => {
  it('reads the peers file', () => {
    expect(loadPeers(peersEnv(sample))).toEqual(sample);
  });

  it('reads every node of the TLS NATS cluster', () => {
    const urls = ['tls://127.0.0.1:4223', 'tls://127.0.0.1:4224', 'tls://127.0.0.1:4225'];
    expect(loadPeers(peersEnv({ ...sample, natsTls: { ...sample.natsTls, urls } })).natsTls?.urls).toEqual(urls);
  });

  it('knows the machine NATS even without a peers file, and nothing else', () => {
    const env = { SEALPOST_TEST_PEERS_FILE: join(tempDir().path, 'absent.json') };
    expect(loadPeers(env)).toEqual({ nats: { url: 'nats://127.0.0.1:4222' } });
  });

  it('applies SEALPOST_TEST_* overrides, and `none` marks a peer missing', () => {
    const peers = loadPeers(
      peersEnv(sample, {
        SEALPOST_TEST_NATS_URL: 'nats://127.0.0.2:5222',
        SEALPOST_TEST_NATS_TLS_URL: 'tls://localhost:4443',
        SEALPOST_TEST_MONGO_URL: 'none',
        SEALPOST_TEST_KMS_ENDPOINT: 'http://127.0.0.1:9999',
        SEALPOST_TEST_KMS_REGION: 'us-east-1',
        SEALPOST_TEST_SES_ENDPOINT: 'none',
        SEALPOST_TEST_NATS_CLI: '/opt/nats',
      }),
    );
    expect(peers.nats).toEqual({ url: 'nats://127.0.0.2:5222' });
    expect(peers.natsTls?.url).toBe('tls://localhost:4443');
    expect(peers.natsTls?.admin).toEqual(sample.natsTls.admin);
    expect(peers.mongo).toBeUndefined();
    expect(peers.kms).toEqual({ endpoint: 'http://127.0.0.1:9999', region: 'us-east-1' });
    expect(peers.ses).toBeUndefined();
    expect(peers.natsCli).toBe('/opt/nats');
  });

  it('does not invent TLS credentials from a URL override alone', () => {
    const env = { SEALPOST_TEST_PEERS_FILE: '/nonexistent/peers.json', SEALPOST_TEST_NATS_TLS_URL: 'tls://h:1' };
    expect(loadPeers(env).natsTls).toBeUndefined();
  });

  it.each<[string, unknown]>([
    ['not JSON', '{ nats: '],
    ['an array', []],
    ['a URL that is not a string', { mongo: { url: 27018 } }],
    ['TLS peer without admin', { natsTls: { url: 'tls://h:1', ca: '/ca', users: {} } }],
    ['a user without password', { natsTls: { ...sample.natsTls, users: { audit: { user: 'audit' } } } }],
    ['a cluster URL list that is not a list', { natsTls: { ...sample.natsTls, urls: 'tls://h:1' } }],
    ['a cluster URL list with an empty entry', { natsTls: { ...sample.natsTls, urls: ['tls://h:1', ''] } }],
  ])('refuses a peers file that is %s', (_what, content) => {
    const error = (() => {
      try {
        loadPeers(peersEnv(content));
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(PeerConfigError);
    expect((error as PeerConfigError).code).toBe('PEER_CONFIG_INVALID');
    // Passwords never appear in the message.
    expect((error as Error).message).not.toContain('pw-');
  });
});

describe('requirePeer and natsTlsConnectOptions', () => {
  it('returns the configured peer or throws PeerMissingError naming it', () => {
    const env = peersEnv(sample, { SEALPOST_TEST_MONGO_URL: 'none' });
    expect(requirePeer('kms', env)).toEqual(sample.kms);
    expect(() => requirePeer('mongo', env)).toThrow(new PeerMissingError('mongo'));
    expect(() => requirePeer('mongo', env)).toThrow('peer mongo missing');
  });

  it('builds connect options for a service user and for admin', () => {
    const env = peersEnv(sample);
    expect(natsTlsConnectOptions('consent', env)).toEqual({
      servers: 'tls://127.0.0.1:4223',
      user: 'consent',
      pass: 'pw-consent',
      tls: { caFile: '/x/ca.pem' },
    });
    expect(natsTlsConnectOptions('admin', env).pass).toBe('pw-admin');
    expect(() => natsTlsConnectOptions('mallory', env)).toThrow(PeerMissingError);
  });
});

describe('addressOf', () => {
  it.each([
    ['nats://127.0.0.1:4222', { host: '127.0.0.1', port: 4222 }],
    ['tls://user:pw@localhost:4223', { host: 'localhost', port: 4223 }],
    ['mongodb://127.0.0.1:27018/', { host: '127.0.0.1', port: 27018 }],
    ['mongodb://a:1,b:2/?replicaSet=x', { host: 'a', port: 1 }],
    ['mongodb://db.local/', { host: 'db.local', port: 27017 }],
    ['http://127.0.0.1:4599', { host: '127.0.0.1', port: 4599 }],
    ['http://[::1]:8005/', { host: '::1', port: 8005 }],
  ])('%s', (url, expected) => {
    expect(addressOf(url)).toEqual(expected);
  });

  it('returns undefined for what it cannot place', () => {
    expect(addressOf('not a url')).toBeUndefined();
    expect(addressOf('ftp://host/')).toBeUndefined();
  });
});

describe('peerAvailable', () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    server = createServer((socket) => socket.end());
    port = await new Promise((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
    );
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('is true only for a configured peer that accepts connections', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const env = peersEnv(
      { ses: { endpoint: `http://127.0.0.1:${port}` }, kms: { endpoint: `http://127.0.0.1:${closed}`, region: 'x' } },
      { SEALPOST_TEST_MONGO_URL: 'none' },
    );
    expect(peerAvailable('ses', env)).toBe(true);
    expect(peerAvailable('kms', env)).toBe(false);
    expect(peerAvailable('mongo', env)).toBe(false);
    expect(peerAvailable('natsTls', env)).toBe(false);
  });

  it('checks that the nats CLI is an executable file', () => {
    const dir = tempDir();
    const bin = join(dir.path, 'nats');
    writeFileSync(bin, '#!/bin/sh\n');
    chmodSync(bin, 0o644);
    expect(peerAvailable('natsCli', peersEnv({ natsCli: bin }))).toBe(false);
    chmodSync(bin, 0o755);
    expect(peerAvailable('natsCli', peersEnv({ natsCli: bin }))).toBe(true);
    expect(peerAvailable('natsCli', peersEnv({}))).toBe(false);
  });
});

describe('decidePeerGate', () => {
  const only =
    (...present: PeerName[]) =>
    (name: PeerName): boolean =>
      present.includes(name);

  it('runs when every peer is available', () => {
    expect(decidePeerGate(['mongo', 'natsTls'], 'store', only('mongo', 'natsTls'), true)).toEqual({ action: 'run' });
  });

  it('fails under CI, naming the missing peers', () => {
    expect(decidePeerGate(['mongo', 'natsTls', 'kms'], 'store', only('mongo'), true)).toEqual({
      action: 'fail',
      missing: ['natsTls', 'kms'],
    });
  });

  it('skips elsewhere with a printed notice naming the peer and the suite', () => {
    expect(decidePeerGate(['mongo'], 'mongo store', only(), false)).toEqual({
      action: 'skip',
      missing: ['mongo'],
      notice: 'peer mongo missing: skipped mongo store',
    });
  });

  it('reads CI from the environment', () => {
    expect(isCi({ CI: 'true' })).toBe(true);
    expect(isCi({ CI: '1' })).toBe(true);
    expect(isCi({ CI: 'false' })).toBe(false);
    expect(isCi({})).toBe(false);
  });
});
