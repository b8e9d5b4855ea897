import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {
  certificateAuthorityFrom,
  generateCaMaterial,
  parseCertificates,
  type CertificateAuthority,
  type IssueOptions,
} from './certificate-authority';
import { assertDevModeAllowed, type RuntimeMode } from './dev-mode';

/** Trust domain of every development identity; production uses its own and refuses this one. */
export const DEV_TRUST_DOMAIN = 'sealpost.dev';
/** Subject CN that marks the development CA (checked by `assertProductionTrustBundle`). */
export const DEV_CA_COMMON_NAME = 'Sealpost Development CA';

const CA_CERT_FILE = 'dev-ca.crt';
const CA_KEY_FILE = 'dev-ca.key';
// Re-create the CA this long before it expires, so leaves issued now never outlive it.
const RENEW_BEFORE_MS = 2 * 86_400_000;

/** Paths of the TLS files written for one service (inputs of `loadTlsMaterial`). */
export interface TlsFiles {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

async function writePrivate(file: string, content: string): Promise<void> {
  // Write then rename so a crash never leaves a half-written key; mode 0600 from the first byte.
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, content, { mode: 0o600 });
  await fs.rename(tmp, file);
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Opens the development CA in `dir`, creating it on first run (key file mode 0600).
 * Throws `DEV_MODE_REFUSED` in production mode.
 */
export async function openDevCa(options: { dir: string; mode: RuntimeMode | string }): Promise<CertificateAuthority> {
  assertDevModeAllowed(options.mode, 'the development CA');
  await fs.mkdir(options.dir, { recursive: true, mode: 0o700 });
  const certFile = path.join(options.dir, CA_CERT_FILE);
  const keyFile = path.join(options.dir, CA_KEY_FILE);
  const [certPem, keyPem] = await Promise.all([readIfExists(certFile), readIfExists(keyFile)]);
  if (certPem !== undefined && keyPem !== undefined) {
    const [cert] = parseCertificates(certPem);
    if (cert && cert.notAfter.getTime() - Date.now() > RENEW_BEFORE_MS) {
      return certificateAuthorityFrom({ certPem, keyPem }, DEV_TRUST_DOMAIN);
    }
  }
  const material = await generateCaMaterial({ commonName: DEV_CA_COMMON_NAME, trustDomain: DEV_TRUST_DOMAIN });
  await writePrivate(keyFile, material.keyPem);
  await fs.writeFile(certFile, material.certPem, { mode: 0o644 });
  return certificateAuthorityFrom(material, DEV_TRUST_DOMAIN);
}

/**
 * Issues a fresh leaf for `service` from the dev CA and writes ca/cert/key files under `<dir>/<service>/`.
 * Throws `DEV_MODE_REFUSED` in production mode.
 */
export async function writeDevTlsFiles(options: {
  dir: string;
  mode: RuntimeMode | string;
  service: string;
  usage?: IssueOptions['usage'];
  /** Where to write; default `<dir>/<service>/{ca.crt,tls.crt,tls.key}`. */
  files?: TlsFiles;
}): Promise<TlsFiles> {
  const ca = await openDevCa(options);
  const leaf = await ca.issue({ service: options.service, usage: options.usage ?? 'server' });
  const out = path.join(options.dir, options.service);
  const files: TlsFiles = options.files ?? {
    caFile: path.join(out, 'ca.crt'),
    certFile: path.join(out, 'tls.crt'),
    keyFile: path.join(out, 'tls.key'),
  };
  for (const file of [files.caFile, files.certFile, files.keyFile]) {
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  }
  await fs.writeFile(files.caFile, ca.certPem, { mode: 0o644 });
  await fs.writeFile(files.certFile, leaf.certPem, { mode: 0o644 });
  await writePrivate(files.keyFile, leaf.keyPem);
  return files;
}
