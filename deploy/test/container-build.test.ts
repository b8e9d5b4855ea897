/**
 * The container recipe, proven without a Docker engine: deploy/build-image-dir.sh (the script deploy/Dockerfile
 * RUNs, once per service with `--build-arg SERVICE=…`) builds the audit and the contact-vault image trees into a
 * temp dir; each service then starts FROM ITS DIRECTORY with the image's own ENTRYPOINT and ENV (read from the
 * Dockerfile, `${SERVICE}` substituted as the build arg would be) in production mode against the real peers:
 * FerretDB, the 3-node TLS NATS cluster with the service's own user, and local-kms behind an HTTPS front
 * (production refuses plain-http endpoints) holding the keys the service uses. Certificates come from a fresh test
 * CA, never the dev CA (production refuses a trust bundle holding it); the vault's are shaped like those of
 * csi-driver-spiffe (`spiffe://<td>/ns/<namespace>/sa/<service>`, no host name), as in the cluster. The image's
 * HEALTHCHECK command must report SERVING, the vault must answer authenticated calls over mutual TLS, and SIGTERM
 * must end each service with exit code 0.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { vaultV1 } from '@sealpost/proto';
import { describeWithPeer, loadPeers, tempDir, uniqueName, waitFor } from '@sealpost/testkit';
import { REPO_ROOT } from './lib/render';

const SERVICES = ['audit', 'contact-vault'] as const;
type ImageService = (typeof SERVICES)[number];
const TRUST_DOMAIN = 'test.sealpost.internal';
/** SEALPOST_SPIFFE_NAMESPACE of the vault, as the overlays set it to their namespace. */
const NAMESPACE = 'sealpost-test';
const JWT_ISSUER = 'https://login.test.sealpost.internal';
const dockerfile = readFileSync(join(REPO_ROOT, 'deploy/Dockerfile'), 'utf8');

/** `ENTRYPOINT [...]` / `HEALTHCHECK ... CMD [...]` of the runtime stage, as argv. */
function execForm(instruction: RegExp): string[] {
  const match = instruction.exec(dockerfile);
  if (!match?.[1]) throw new Error(`Dockerfile: ${String(instruction)} not found`);
  return JSON.parse(match[1]) as string[];
}

/** `ENV` of the runtime stage (the last FROM), with `${SERVICE}` substituted as the build arg would be. */
function runtimeEnv(service: ImageService): Record<string, string> {
  const stage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const env: Record<string, string> = {};
  for (const m of stage.matchAll(/^ENV ((?:.*\\\n)*.*)$/gm)) {
    for (const pair of m[1]!.replace(/\\\n/g, ' ').trim().split(/\s+/)) {
      const [k, v] = pair.split('=');
      env[k!] = (v ?? '').replace('${SERVICE}', service);
    }
  }
  return env;
}

const openssl = (args: string[], cwd: string) =>
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });

/** A leaf certificate `<name>.pem` / `<name>-key.pem` (ECDSA P-256) signed by the test CA of `dir`. */
function leaf(dir: string, name: string, san: string, eku: string): void {
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
}

/** csi-driver-spiffe's SPIFFE id of a pod running as service account `sa` in `namespace`. */
const podSpiffeId = (sa: string, namespace = NAMESPACE) => `spiffe://${TRUST_DOMAIN}/ns/${namespace}/sa/${sa}`;

/**
 * A test CA (ECDSA P-256; not the dev CA) and its leaves: the audit certificate (`spiffe://<td>/audit`), the
 * vault's and a caller's in csi-driver-spiffe's form, a caller from another namespace, and the KMS front's.
 */
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
  leaf(dir, 'audit', `URI:spiffe://${TRUST_DOMAIN}/audit`, 'serverAuth,clientAuth');
  leaf(dir, 'contact-vault', `URI:${podSpiffeId('contact-vault')}`, 'serverAuth,clientAuth');
  leaf(dir, 'dispatch', `URI:${podSpiffeId('dispatch')}`, 'clientAuth');
  leaf(dir, 'dispatch-elsewhere', `URI:${podSpiffeId('dispatch', 'another-namespace')}`, 'clientAuth');
  leaf(dir, 'kms-front', 'IP:127.0.0.1', 'serverAuth');
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

/** A KMS key (as the README's KMS setup creates it) reachable under `alias`. */
async function kmsKeyWithAlias(endpoint: string, alias: string, spec: object): Promise<string> {
  const created = await kmsCall(endpoint, 'CreateKey', spec);
  const arn = String((created.KeyMetadata as { Arn: string }).Arn);
  await kmsCall(endpoint, 'CreateAlias', { AliasName: alias, TargetKeyId: arn });
  return arn;
}

async function freeAddress(): Promise<string> {
  const server = createNetServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return `127.0.0.1:${port}`;
}

/** An operator access token (RFC 9068 `at+jwt`, EdDSA) from the test's own issuer, whose key is in the JWKS file. */
function operatorToken(key: KeyObject, kid: string, claims: Record<string, unknown>): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const signingInput = `${part({ alg: 'EdDSA', typ: 'at+jwt', kid })}.${part(claims)}`;
  return `${signingInput}.${sign(null, Buffer.from(signingInput), key).toString('base64url')}`;
}

const ContactVaultClient = grpc.makeGenericClientConstructor(vaultV1.ContactVaultService, 'ContactVault');

/**
 * A vault client with the certificate `<certName>.pem`. The server's certificate names no host (csi-driver-spiffe
 * issues SPIFFE ids only), so the client checks the vault's SPIFFE id instead of a host name.
 */
function vaultClient(address: string, certs: string, certName: string): grpc.Client {
  const expected = `URI:${podSpiffeId('contact-vault')}`;
  const credentials = grpc.credentials.createSsl(
    readFileSync(join(certs, 'ca.pem')),
    readFileSync(join(certs, `${certName}-key.pem`)),
    readFileSync(join(certs, `${certName}.pem`)),
    {
      checkServerIdentity: (_host, cert) =>
        (cert.subjectaltname ?? '').split(', ').includes(expected)
          ? undefined
          : new Error('the server is not the contact vault of this namespace'),
    },
  );
  // The name is only the TLS server name sent (SNI may not be an IP address); the check above decides.
  return new ContactVaultClient(address, credentials, { 'grpc.ssl_target_name_override': 'contact-vault' });
}

interface CallResult<T> {
  response?: T;
  code?: grpc.status;
  reason?: string;
}

/** ImportContacts (a bidirectional stream) with one message of `rows`; resolves with every row's result. */
function importRows(
  client: grpc.Client,
  metadata: grpc.Metadata,
  tenantId: string,
  rows: { row: string; fields: { email?: string; phone?: string } }[],
): Promise<vaultV1.ImportContactsRowResult[]> {
  return new Promise((resolve, reject) => {
    const call = (
      client as unknown as {
        importContacts: (
          m: grpc.Metadata,
          o: grpc.CallOptions,
        ) => grpc.ClientDuplexStream<unknown, vaultV1.ImportContactsResponse>;
      }
    ).importContacts(metadata, { deadline: Date.now() + 15_000 });
    const results: vaultV1.ImportContactsRowResult[] = [];
    call.on('data', (response: vaultV1.ImportContactsResponse) => results.push(...response.results));
    call.on('error', reject);
    call.on('end', () => resolve(results));
    call.write(vaultV1.ImportContactsRequest.fromPartial({ tenantId, rows }));
    call.end();
  });
}

function unary<T>(
  client: grpc.Client,
  method: string,
  request: unknown,
  metadata: grpc.Metadata,
): Promise<CallResult<T>> {
  return new Promise((resolve) => {
    const fn = (client as unknown as Record<string, (...a: unknown[]) => void>)[method]!;
    fn.call(client, request, metadata, { deadline: Date.now() + 15_000 }, (err: grpc.ServiceError | null, res: T) => {
      if (!err) return resolve({ response: res });
      const [reason] = err.metadata?.get('x-sealpost-reason') ?? [];
      resolve({ code: err.code, ...(typeof reason === 'string' ? { reason } : {}) });
    });
  });
}

/** One service process started from its image tree, with everything it printed. */
interface ImageProcess {
  readonly child: ChildProcess;
  readonly env: Record<string, string>;
  output(): string;
}

/** The image's ENTRYPOINT, run as Docker would: the tree stands in for /app. */
function startFromImage(image: string, env: Record<string, string>): ImageProcess {
  const [cmd, ...args] = execForm(/^ENTRYPOINT (\[.*\])$/m).map((a) => a.replace(/^\/app\//, `${image}/`));
  expect(cmd).toBe('node');
  const child = spawn(process.execPath, args, { cwd: image, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  return { child, env, output: () => output };
}

/** Polls the image's HEALTHCHECK command (same env and root as the container) until it reports SERVING. */
async function untilHealthy(image: string, run: ImageProcess, label: string): Promise<void> {
  const [hcCmd, ...hcArgs] = execForm(/^HEALTHCHECK .*CMD (\[.*\])$/m).map((a) => a.replace(/^\/app\//, `${image}/`));
  expect(hcCmd).toBe('node');
  const healthy = () => {
    if (run.child.exitCode !== null) throw new Error(`service exited ${run.child.exitCode}:\n${run.output()}`);
    const r = spawnSync(process.execPath, hcArgs, { cwd: image, env: run.env, encoding: 'utf8', timeout: 5000 });
    return r.status === 0 && r.stdout.trim() === 'SERVING';
  };
  await waitFor(`${label} health SERVING`, healthy, { timeoutMs: 60_000, intervalMs: 500 }).catch((err: unknown) => {
    throw new Error(`${String(err)}\nservice output:\n${run.output()}`);
  });
}

/** SIGTERM, then the exit code (and the output only when it is not 0, so a failure explains itself). */
async function stopWithSigterm(run: ImageProcess): Promise<{ code: number | null; output: string }> {
  run.child.kill('SIGTERM');
  const [code] = (await once(run.child, 'exit')) as [number | null];
  return { code, output: code === 0 ? '' : run.output() };
}

describeWithPeer(
  ['natsTls', 'mongo', 'kms'],
  'container build: the audit and contact-vault image trees start in production mode',
  () => {
    const tmp = tempDir('sealpost-image-');
    const images = Object.fromEntries(SERVICES.map((s) => [s, join(tmp.path, 'images', s)])) as Record<
      ImageService,
      string
    >;
    const certs = join(tmp.path, 'certs');
    const secrets = join(tmp.path, 'secrets');
    const witness = join(tmp.path, 'witness', 'tree-heads.jsonl');
    const databases: Record<ImageService, string> = {
      audit: uniqueName('sealpost_audit_img'),
      'contact-vault': uniqueName('sealpost_vault_img'),
    };
    const running: ImageProcess[] = [];
    let front: HttpsServer | undefined;
    let kmsFrontUrl = '';
    // Listeners of both services, fixed up front so the vault can name the audit address (its audit peer).
    const addresses = {} as Record<ImageService, { grpc: string; health: string }>;

    // Every package.json of the workspace, to prove the builds edit only their own copies.
    const workspaceManifests = (): Record<string, string> =>
      Object.fromEntries(
        ['packages', 'services']
          .flatMap((dir) => readdirSync(join(REPO_ROOT, dir)).map((name) => join(REPO_ROOT, dir, name, 'package.json')))
          .filter((file) => existsSync(file))
          .map((file) => [file, readFileSync(file, 'utf8')]),
      );
    let manifestsBefore: Record<string, string> = {};
    const builtListing = {} as Record<ImageService, string[]>;

    /** What every deployment provides (k8s/base/common/settings.env and the Deployment), with test values. */
    const deploymentEnv = (service: ImageService): Record<string, string> => {
      const peers = loadPeers();
      const nats = peers.natsTls!;
      return {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        ...runtimeEnv(service),
        SEALPOST_TRUST_DOMAIN: TRUST_DOMAIN,
        SEALPOST_DEV_TOKENS: 'false',
        SEALPOST_TLS_CA_FILE: join(certs, 'ca.pem'),
        SEALPOST_TLS_CERT_FILE: join(certs, `${service}.pem`),
        SEALPOST_TLS_KEY_FILE: join(certs, `${service}-key.pem`),
        SEALPOST_NATS_URL: (nats.urls ?? [nats.url]).join(','),
        SEALPOST_NATS_CA_FILE: nats.ca,
        SEALPOST_NATS_USER: nats.users[service]!.user,
        SEALPOST_NATS_PASSWORD_FILE: join(secrets, `nats-${service}-password`),
        SEALPOST_NATS_STREAM_REPLICAS: '3',
        SEALPOST_MONGO_URL: peers.mongo!.url,
        SEALPOST_MONGO_DATABASE: databases[service],
        SEALPOST_AWS_REGION: peers.kms!.region,
        SEALPOST_KMS_ENDPOINT: kmsFrontUrl,
        SEALPOST_JWT_ISSUER: JWT_ISSUER,
        SEALPOST_JWKS_FILE: join(secrets, 'jwks.json'),
        SEALPOST_LOG_LEVEL: 'info',
        // Not Sealpost settings: trust for the KMS front's certificate, and dummy keys local-kms ignores.
        NODE_EXTRA_CA_CERTS: join(certs, 'ca.pem'),
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      };
    };

    // The operator token issuer of this test: its public key is the only one in the services' JWKS file.
    const issuerKey = generateKeyPairSync('ed25519');
    const issuerKid = 'container-build-test';

    beforeAll(async () => {
      manifestsBefore = workspaceManifests();
      // The same script the Dockerfile RUNs, once per SERVICE build arg (each image holds one service's
      // production dependencies); it fails on a devDependency, a .ts file or an unstubbed dev module.
      for (const service of SERVICES) {
        execFileSync('bash', [join(REPO_ROOT, 'deploy/build-image-dir.sh'), service, images[service]], {
          cwd: REPO_ROOT,
          stdio: ['ignore', 'ignore', 'pipe'],
          timeout: 240_000,
        });
        builtListing[service] = readdirSync(images[service]).sort();
      }

      const peers = loadPeers();
      mkdirSync(certs, { recursive: true });
      mkdirSync(secrets, { recursive: true });
      mintCertificates(certs);
      for (const service of SERVICES) {
        writeFileSync(join(secrets, `nats-${service}-password`), peers.natsTls!.users[service]!.password, {
          mode: 0o600,
        });
      }
      const jwk = { ...issuerKey.publicKey.export({ format: 'jwk' }), kid: issuerKid, alg: 'EdDSA', use: 'sig' };
      writeFileSync(join(secrets, 'jwks.json'), `${JSON.stringify({ keys: [jwk] })}\n`, { mode: 0o600 });
      const started = await startKmsFront(certs, peers.kms!.endpoint);
      front = started.server;
      kmsFrontUrl = started.url;
      for (const service of SERVICES) addresses[service] = { grpc: await freeAddress(), health: await freeAddress() };
    }, 480_000);

    afterAll(async () => {
      for (const run of running) if (run.child.exitCode === null) run.child.kill('SIGKILL');
      front?.close();
      // Drop the run's databases (the vault's key store is `<database>_keys`) with an image's own driver.
      const peers = loadPeers();
      const image = images['contact-vault'];
      if (peers.mongo && existsSync(join(image, 'node_modules/mongodb'))) {
        spawnSync(
          process.execPath,
          [
            '-e',
            `const {MongoClient}=require('mongodb');const c=new MongoClient(process.argv[1]);
          Promise.all(process.argv.slice(2).map((d)=>c.db(d).dropDatabase())).finally(()=>c.close())`,
            peers.mongo.url,
            databases.audit,
            databases['contact-vault'],
            `${databases['contact-vault']}_keys`,
          ],
          { cwd: image, timeout: 15_000 },
        );
      }
      tmp.cleanup();
    });

    it('leaves the workspace untouched (the build trees share no file with it)', () => {
      expect(workspaceManifests()).toEqual(manifestsBefore);
    });

    it.each(SERVICES)('%s: ships no devDependencies, no TypeScript and no dev modules', (service) => {
      const image = images[service];
      const store = readdirSync(join(image, 'node_modules/.pnpm'));
      for (const dev of ['jest@', 'typescript@', '@swc+core@', 'tsx@', 'esbuild@', 'ts-proto@', '@sealpost+testkit@']) {
        expect(store.filter((entry) => entry.startsWith(dev))).toEqual([]);
      }
      expect(store.some((entry) => entry.startsWith('mongodb@'))).toBe(true); // a production dependency is there
      expect(existsSync(join(image, 'src/main.js'))).toBe(true);
      expect(existsSync(join(image, 'src/main.ts'))).toBe(false);
      expect(existsSync(join(image, 'test'))).toBe(false);
      expect(JSON.parse(readFileSync(join(image, 'image.json'), 'utf8'))).toMatchObject({ service });
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

    it('contact-vault: ships the audit formats, not the audit service', () => {
      // The vault checks audit proofs with @sealpost/audit-format; the audit service is only a test peer of its suites.
      const store = readdirSync(join(images['contact-vault'], 'node_modules/.pnpm'));
      expect(store.filter((entry) => entry.startsWith('@sealpost+audit-format@'))).toHaveLength(1);
      expect(store.filter((entry) => entry.startsWith('@sealpost+audit@'))).toEqual([]);
    });

    it('audit: starts from its directory in production mode, answers gRPC health SERVING, signs with KMS, exits 0 on SIGTERM', async () => {
      const kms = loadPeers().kms!;
      // The tree-head signing key, as the README's KMS setup creates it: ECC_NIST_P256, SIGN_VERIFY, an alias.
      const alias = `alias/${uniqueName('sealpost-test-sth')}`;
      await kmsKeyWithAlias(kms.endpoint, alias, { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });

      const image = images.audit;
      const env: Record<string, string> = {
        ...deploymentEnv('audit'),
        SEALPOST_AUDIT_GRPC_ADDR: addresses.audit.grpc,
        SEALPOST_AUDIT_HEALTH_ADDR: addresses.audit.health,
        SEALPOST_KMS_KEY_ID_TEMPLATE: 'alias/sealpost-test-{tenant}',
        SEALPOST_AUDIT_SIGNING_KEY_ID: alias,
        SEALPOST_AUDIT_WITNESS_FILE: witness,
      };
      expect(env.SEALPOST_MODE).toBe('production'); // the image's default mode
      const run = startFromImage(image, env);
      running.push(run);
      await untilHealthy(image, run, 'audit');

      // The start-up tree head was signed by the KMS key (ES256) and written to the witness file.
      const heads = readFileSync(witness, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { kid: string; jws: string });
      expect(heads.length).toBeGreaterThanOrEqual(1);
      expect(heads[0]!.kid).toBe(alias);
      const header = JSON.parse(Buffer.from(heads[0]!.jws.split('.')[0]!, 'base64url').toString()) as {
        alg: string;
      };
      expect(header.alg).toBe('ES256');

      expect(await stopWithSigterm(run)).toEqual({ code: 0, output: '' });
      // The service wrote nothing into its image directory (read-only root filesystem in the cluster).
      expect(readdirSync(image).sort()).toEqual(builtListing.audit);
    }, 120_000);

    it('contact-vault: starts from its directory in production mode, answers gRPC health, serves authenticated calls over mTLS, exits 0 on SIGTERM', async () => {
      const kms = loadPeers().kms!;
      const tenant = uniqueName('t-image');
      const keyPrefix = uniqueName('sealpost-test-tenant');
      // One symmetric key per tenant behind SEALPOST_KMS_KEY_ID_TEMPLATE, and the erasure-receipt signing key
      // (ECC_NIST_P256, SIGN_VERIFY) whose public key the vault fetches at start-up: both as the README creates them.
      await kmsKeyWithAlias(kms.endpoint, `alias/${keyPrefix}-${tenant}`, {
        KeySpec: 'SYMMETRIC_DEFAULT',
        KeyUsage: 'ENCRYPT_DECRYPT',
      });
      const receiptAlias = `alias/${uniqueName('sealpost-test-receipts')}`;
      await kmsKeyWithAlias(kms.endpoint, receiptAlias, { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });

      const image = images['contact-vault'];
      const env: Record<string, string> = {
        ...deploymentEnv('contact-vault'),
        SEALPOST_SPIFFE_NAMESPACE: NAMESPACE,
        SEALPOST_VAULT_GRPC_ADDR: addresses['contact-vault'].grpc,
        SEALPOST_VAULT_HEALTH_ADDR: addresses['contact-vault'].health,
        // Where the vault dials audit (the audit instance of this suite). Whether it runs or not, the vault must
        // start: audit is needed per erasure, not at start-up.
        SEALPOST_AUDIT_GRPC_ADDR: addresses.audit.grpc,
        SEALPOST_KMS_KEY_ID_TEMPLATE: `alias/${keyPrefix}-{tenant}`,
        SEALPOST_VAULT_RECEIPT_SIGNING_KEY_ID: receiptAlias,
      };
      expect(env.SEALPOST_MODE).toBe('production');
      expect(env.SEALPOST_SERVICE).toBe('contact-vault');
      const run = startFromImage(image, env);
      running.push(run);
      await untilHealthy(image, run, 'contact-vault');

      const address = addresses['contact-vault'].grpc;
      const caller = vaultClient(address, certs, 'dispatch');
      const elsewhere = vaultClient(address, certs, 'dispatch-elsewhere');
      try {
        // An operator (marketer of the tenant) through a client with a csi-driver-spiffe certificate: the write
        // path encrypts under the tenant's KMS key, stores in FerretDB and queues the event for NATS.
        const now = Math.floor(Date.now() / 1000);
        const token = operatorToken(issuerKey.privateKey, issuerKid, {
          iss: JWT_ISSUER,
          aud: 'sealpost',
          sub: 'op-container-test',
          tenant,
          roles: ['marketer'],
          amr: ['pwd'],
          iat: now,
          exp: now + 120,
        });
        const operator = new grpc.Metadata();
        operator.set('authorization', `Bearer ${token}`);
        const email = 'image.canary@example.com';
        const upserted = await unary<vaultV1.UpsertContactResponse>(
          caller,
          'upsertContact',
          vaultV1.UpsertContactRequest.fromPartial({ tenantId: tenant, fields: { email }, requestId: uniqueName('r') }),
          operator,
        );
        expect(upserted).toEqual({ response: expect.objectContaining({ created: true }) });
        const contactId = upserted.response!.contactId;
        expect(contactId).not.toBe('');

        // The same client as the dispatch service (its certificate alone; the access table lets dispatch read the
        // masked view): the identity comes from `ns/<namespace>/sa/dispatch`, accepted for this namespace only.
        const read = await unary<vaultV1.GetContactResponse>(
          caller,
          'getContact',
          vaultV1.GetContactRequest.fromPartial({ tenantId: tenant, contactId }),
          new grpc.Metadata(),
        );
        expect(read.response?.contact).toMatchObject({ contactId, tenantId: tenant, emailMasked: 'i***@e***.com' });

        // A bulk import: it starts the worker thread that normalises later batches, loaded from the image's compiled
        // JavaScript. Were it missing, imports would still succeed in line but the vault would log a `normalizer`
        // error (within the second waited below).
        const imported = await importRows(caller, operator, tenant, [
          { row: '2', fields: { email: 'image.canary@example.com', phone: '+44 7911 123456' } },
          { row: '3', fields: { email: 'not-an-email' } },
        ]);
        expect(imported.map((r) => [r.row, r.result, r.contactId === contactId ? 'same' : r.reason])).toEqual([
          ['2', 'updated', 'same'],
          ['3', 'rejected', 'INVALID_ARGUMENT'],
        ]);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const stranger = await unary(
          elsewhere,
          'getContact',
          vaultV1.GetContactRequest.fromPartial({ tenantId: tenant, contactId }),
          new grpc.Metadata(),
        );
        expect(stranger).toEqual({ code: grpc.status.UNAUTHENTICATED, reason: 'NAMESPACE_MISMATCH' });
      } finally {
        caller.close();
        elsewhere.close();
      }

      expect(await stopWithSigterm(run)).toEqual({ code: 0, output: '' });
      // No personal data in what the service printed (structured logs), and the import's worker ran.
      expect(run.output()).not.toContain('image.canary');
      expect(run.output()).not.toContain('"where":"normalizer"');
      expect(readdirSync(image).sort()).toEqual(builtListing['contact-vault']);
    }, 120_000);
  },
);
