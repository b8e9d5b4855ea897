/**
 * The container recipe, proven without a Docker engine: deploy/build-image-dir.sh (the script deploy/Dockerfile
 * RUNs) builds the audit image tree into a temp dir; the service then starts FROM THAT DIRECTORY with the image's
 * own ENTRYPOINT and ENV (read from the Dockerfile) in production mode against the real peers: FerretDB, the
 * 3-node TLS NATS cluster with the audit user, and local-kms holding the tree-head signing key (behind an HTTPS
 * front: production refuses plain-http endpoints). Its mTLS certificate comes from a fresh test CA, not the dev
 * CA. The image's HEALTHCHECK command must report SERVING; SIGTERM must end it with exit code 0.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { describeWithPeer, loadPeers, tempDir, uniqueName, waitFor } from '@sealpost/testkit';
import { REPO_ROOT } from './lib/render';

const SERVICE = 'audit';
const TRUST_DOMAIN = 'test.sealpost.internal';
const dockerfile = readFileSync(join(REPO_ROOT, 'deploy/Dockerfile'), 'utf8');

/** `ENTRYPOINT [...]` / `HEALTHCHECK ... CMD [...]` of the runtime stage, as argv. */
function execForm(instruction: RegExp): string[] {
  const match = instruction.exec(dockerfile);
  if (!match?.[1]) throw new Error(`Dockerfile: ${String(instruction)} not found`);
  return JSON.parse(match[1]) as string[];
}

/** `ENV` of the runtime stage (the last FROM), with `${SERVICE}` substituted as the build arg would be. */
function runtimeEnv(): Record<string, string> {
  const stage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const env: Record<string, string> = {};
  for (const m of stage.matchAll(/^ENV ((?:.*\\\n)*.*)$/gm)) {
    for (const pair of m[1]!.replace(/\\\n/g, ' ').trim().split(/\s+/)) {
      const [k, v] = pair.split('=');
      env[k!] = (v ?? '').replace('${SERVICE}', SERVICE);
    }
  }
  return env;
}

const openssl = (args: string[], cwd: string) =>
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });

/** A test CA (ECDSA P-256) and leaves: a SPIFFE client/server certificate for the service, a server one for 127.0.0.1. */
function mintCertificates(dir: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ca-key.pem'], dir);
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      'ca-key.pem',
      '-sha256',
      '-days',
      '2',
      '-subj',
      '/CN=Sealpost container-build test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      'ca.pem',
    ],
    dir,
  );
  const leaf = (name: string, san: string, eku: string) => {
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}-key.pem`], dir);
    openssl(['req', '-new', '-key', `${name}-key.pem`, '-subj', `/CN=${name}`, '-out', `${name}.csr`], dir);
    writeFileSync(
      join(dir, `${name}.ext`),
      `subjectAltName=${san}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=${eku}\n`,
    );
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca-key.pem',
        '-set_serial',
        `0x${Date.now().toString(16)}${name.length}`,
        '-days',
        '1',
        '-sha256',
        '-extfile',
        `${name}.ext`,
        '-out',
        `${name}.pem`,
      ],
      dir,
    );
  };
  leaf(SERVICE, `URI:spiffe://${TRUST_DOMAIN}/${SERVICE}`, 'serverAuth,clientAuth');
  leaf('kms-front', 'IP:127.0.0.1', 'serverAuth');
}

/** HTTPS in front of local-kms, as in deploy/compose.yaml's tls-front: production refuses http KMS endpoints. */
async function startKmsFront(dir: string, kmsEndpoint: string): Promise<{ server: HttpsServer; url: string }> {
  const target = new URL(kmsEndpoint);
  const server = createHttpsServer(
    { cert: readFileSync(join(dir, 'kms-front.pem')), key: readFileSync(join(dir, 'kms-front-key.pem')) },
    (req, res) => {
      const up = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          upRes.pipe(res);
        },
      );
      up.on('error', () => res.writeHead(502).end());
      req.pipe(up);
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return { server, url: `https://127.0.0.1:${port}` };
}

async function kmsCall(endpoint: string, action: string, body: object): Promise<Record<string, unknown>> {
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': `TrentService.${action}` },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`local-kms ${action}: HTTP ${res.status}`);
  const text = await res.text(); // CreateAlias answers with an empty body
  return (text === '' ? {} : JSON.parse(text)) as Record<string, unknown>;
}

async function freePort(): Promise<number> {
  const server = createNetServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

describeWithPeer(['natsTls', 'mongo', 'kms'], 'container build: the audit image tree starts in production mode', () => {
  const tmp = tempDir('sealpost-image-');
  const image = join(tmp.path, 'image');
  const certs = join(tmp.path, 'certs');
  const secrets = join(tmp.path, 'secrets');
  const witness = join(tmp.path, 'witness', 'tree-heads.jsonl');
  const database = uniqueName('sealpost_audit_img');
  let child: ChildProcess | undefined;
  let front: HttpsServer | undefined;
  let output = '';
  let healthAddr = '';
  let keyArn = '';

  // Every package.json of the workspace, to prove the build edits only its own copies.
  const workspaceManifests = (): Record<string, string> =>
    Object.fromEntries(
      ['packages', 'services']
        .flatMap((dir) => readdirSync(join(REPO_ROOT, dir)).map((name) => join(REPO_ROOT, dir, name, 'package.json')))
        .filter((file) => existsSync(file))
        .map((file) => [file, readFileSync(file, 'utf8')]),
    );
  let manifestsBefore: Record<string, string> = {};
  let builtListing: string[] = [];

  beforeAll(() => {
    manifestsBefore = workspaceManifests();
    // The same script the Dockerfile RUNs; it fails on a devDependency, a .ts file or an unstubbed dev module.
    execFileSync('bash', [join(REPO_ROOT, 'deploy/build-image-dir.sh'), SERVICE, image], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 240_000,
    });
    builtListing = readdirSync(image).sort();
  }, 300_000);

  it('leaves the workspace untouched (the build tree shares no file with it)', () => {
    expect(workspaceManifests()).toEqual(manifestsBefore);
  });

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    front?.close();
    // Drop the run's database with the image's own driver.
    const peers = loadPeers();
    if (peers.mongo && existsSync(join(image, 'node_modules/mongodb'))) {
      spawnSync(
        process.execPath,
        [
          '-e',
          `const {MongoClient}=require('mongodb');const c=new MongoClient(process.argv[1]);
        c.db(process.argv[2]).dropDatabase().finally(()=>c.close())`,
          peers.mongo.url,
          database,
        ],
        { cwd: image, timeout: 15_000 },
      );
    }
    tmp.cleanup();
  });

  it('ships no devDependencies, no TypeScript and no dev modules', () => {
    const store = readdirSync(join(image, 'node_modules/.pnpm'));
    for (const dev of ['jest@', 'typescript@', '@swc+core@', 'tsx@', 'esbuild@', 'ts-proto@', '@sealpost+testkit@']) {
      expect(store.filter((entry) => entry.startsWith(dev))).toEqual([]);
    }
    expect(store.some((entry) => entry.startsWith('mongodb@'))).toBe(true); // a production dependency is there
    expect(existsSync(join(image, 'src/main.js'))).toBe(true);
    expect(existsSync(join(image, 'src/main.ts'))).toBe(false);
    expect(existsSync(join(image, 'test'))).toBe(false);
    // The dev CA and dev-token modules are refusing stubs.
    const refusal = spawnSync(
      process.execPath,
      [
        '-e',
        `require('@sealpost/access').openDevCa({dir:'/nonexistent',mode:'embedded'}).catch(e=>{console.log(e.code);})`,
      ],
      { cwd: image, encoding: 'utf8' },
    );
    expect(refusal.stdout.trim()).toBe('DEV_MODE_REFUSED');
  });

  it('starts from the directory in production mode, answers gRPC health SERVING, signs with KMS, exits 0 on SIGTERM', async () => {
    const peers = loadPeers();
    const nats = peers.natsTls!;
    const kms = peers.kms!;
    execFileSync('mkdir', ['-p', certs, secrets]);
    mintCertificates(certs);
    writeFileSync(join(secrets, 'nats-password'), nats.users[SERVICE]!.password, { mode: 0o600 });
    writeFileSync(join(secrets, 'jwks.json'), '{"keys":[]}\n', { mode: 0o600 });

    // The tree-head signing key, as the README's KMS setup creates it: ECC_NIST_P256, SIGN_VERIFY, an alias.
    const created = await kmsCall(kms.endpoint, 'CreateKey', { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    keyArn = String((created.KeyMetadata as { Arn: string }).Arn);
    const alias = `alias/${uniqueName('sealpost-test-sth')}`;
    await kmsCall(kms.endpoint, 'CreateAlias', { AliasName: alias, TargetKeyId: keyArn });
    const started = await startKmsFront(certs, kms.endpoint);
    front = started.server;

    const grpcAddr = `127.0.0.1:${await freePort()}`;
    healthAddr = `127.0.0.1:${await freePort()}`;
    const defaults = runtimeEnv();
    expect(defaults.SEALPOST_MODE).toBe('production'); // the image's default mode
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...defaults,
      // What the deployment provides (k8s/base/common/settings.env and the audit Deployment, with test values).
      SEALPOST_TRUST_DOMAIN: TRUST_DOMAIN,
      SEALPOST_DEV_TOKENS: 'false',
      SEALPOST_TLS_CA_FILE: join(certs, 'ca.pem'),
      SEALPOST_TLS_CERT_FILE: join(certs, `${SERVICE}.pem`),
      SEALPOST_TLS_KEY_FILE: join(certs, `${SERVICE}-key.pem`),
      SEALPOST_AUDIT_GRPC_ADDR: grpcAddr,
      SEALPOST_AUDIT_HEALTH_ADDR: healthAddr,
      SEALPOST_NATS_URL: (nats.urls ?? [nats.url]).join(','),
      SEALPOST_NATS_CA_FILE: nats.ca,
      SEALPOST_NATS_USER: nats.users[SERVICE]!.user,
      SEALPOST_NATS_PASSWORD_FILE: join(secrets, 'nats-password'),
      SEALPOST_NATS_STREAM_REPLICAS: '3',
      SEALPOST_MONGO_URL: peers.mongo!.url,
      SEALPOST_MONGO_DATABASE: database,
      SEALPOST_AWS_REGION: kms.region,
      SEALPOST_KMS_ENDPOINT: started.url,
      SEALPOST_KMS_KEY_ID_TEMPLATE: 'alias/sealpost-test-{tenant}',
      SEALPOST_AUDIT_SIGNING_KEY_ID: alias,
      SEALPOST_AUDIT_WITNESS_FILE: witness,
      SEALPOST_JWT_ISSUER: 'https://login.test.sealpost.internal',
      SEALPOST_JWKS_FILE: join(secrets, 'jwks.json'),
      SEALPOST_LOG_LEVEL: 'info',
      // Not Sealpost settings: trust for the KMS front's certificate, and dummy keys local-kms ignores.
      NODE_EXTRA_CA_CERTS: join(certs, 'ca.pem'),
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    const [cmd, ...args] = execForm(/^ENTRYPOINT (\[.*\])$/m).map((a) => a.replace(/^\/app\//, `${image}/`));
    expect(cmd).toBe('node');
    child = spawn(process.execPath, args, { cwd: image, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));

    // The image's HEALTHCHECK command, run as Docker would (inside the container: same env, same root).
    const [hcCmd, ...hcArgs] = execForm(/^HEALTHCHECK .*CMD (\[.*\])$/m).map((a) => a.replace(/^\/app\//, `${image}/`));
    expect(hcCmd).toBe('node');
    const healthy = () => {
      if (child!.exitCode !== null) throw new Error(`service exited ${child!.exitCode}:\n${output}`);
      const r = spawnSync(process.execPath, hcArgs, { cwd: image, env, encoding: 'utf8', timeout: 5000 });
      return r.status === 0 && r.stdout.trim() === 'SERVING';
    };
    await waitFor('audit health SERVING', healthy, { timeoutMs: 60_000, intervalMs: 500 }).catch((err: unknown) => {
      throw new Error(`${String(err)}\nservice output:\n${output}`);
    });

    // The start-up tree head was signed by the KMS key (ES256) and written to the witness file.
    const heads = readFileSync(witness, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kid: string; jws: string });
    expect(heads.length).toBeGreaterThanOrEqual(1);
    expect(heads[0]!.kid).toBe(alias);
    const header = JSON.parse(Buffer.from(heads[0]!.jws.split('.')[0]!, 'base64url').toString()) as { alg: string };
    expect(header.alg).toBe('ES256');

    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    expect({ code, output: code === 0 ? '' : output }).toEqual({ code: 0, output: '' });
    // The service wrote nothing into its image directory (read-only root filesystem in the cluster).
    expect(readdirSync(image).sort()).toEqual(builtListing);
  }, 120_000);
});
