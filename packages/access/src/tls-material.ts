import * as fs from 'node:fs/promises';
import { parseCertificates, uriSansOf } from './certificate-authority';
import { DEV_CA_COMMON_NAME, DEV_TRUST_DOMAIN } from './dev-ca';
import { TlsMaterialError } from './errors';

/** PEM bytes for a TLS endpoint: the trust bundle, this endpoint's chain and its private key. */
export interface TlsMaterial {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** Reads and sanity-checks TLS files; throws `TLS_MATERIAL_INVALID` naming the file (never its content). */
export async function loadTlsMaterial(files: {
  caFile: string;
  certFile: string;
  keyFile: string;
}): Promise<TlsMaterial> {
  const read = async (file: string, what: string): Promise<Buffer> => {
    try {
      return await fs.readFile(file);
    } catch (err) {
      throw new TlsMaterialError('TLS_MATERIAL_INVALID', `cannot read the ${what} file ${file}`, { cause: err });
    }
  };
  const [ca, cert, key] = await Promise.all([
    read(files.caFile, 'CA bundle'),
    read(files.certFile, 'certificate'),
    read(files.keyFile, 'private key'),
  ]);
  for (const [buf, what, file] of [
    [ca, 'CA bundle', files.caFile],
    [cert, 'certificate', files.certFile],
  ] as const) {
    try {
      parseCertificates(buf.toString('utf8'));
    } catch (err) {
      throw new TlsMaterialError('TLS_MATERIAL_INVALID', `the ${what} file ${file} holds no valid PEM certificate`, {
        cause: err,
      });
    }
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.toString('utf8'))) {
    throw new TlsMaterialError(
      'TLS_MATERIAL_INVALID',
      `the private key file ${files.keyFile} holds no PEM private key`,
    );
  }
  return { ca, cert, key };
}

/** True when a certificate is the development CA or was issued into the development trust domain. */
function isDevelopmentCertificate(cert: ReturnType<typeof parseCertificates>[number]): boolean {
  const cns = cert.subjectName.getField('CN');
  if (cns.includes(DEV_CA_COMMON_NAME)) return true;
  return uriSansOf(cert).some(
    (uri) => uri === `spiffe://${DEV_TRUST_DOMAIN}` || uri.startsWith(`spiffe://${DEV_TRUST_DOMAIN}/`),
  );
}

/**
 * Refuses a production trust bundle that contains the development CA (or any certificate of the dev trust
 * domain): whoever holds the dev CA key, which sits on laptops, could otherwise mint production identities.
 */
export function assertProductionTrustBundle(pem: string | Buffer): void {
  let certs;
  try {
    certs = parseCertificates(pem.toString());
  } catch (err) {
    throw new TlsMaterialError('TLS_MATERIAL_INVALID', 'SEALPOST_TLS_CA_FILE holds no valid PEM certificate', {
      cause: err,
    });
  }
  if (certs.some(isDevelopmentCertificate)) {
    throw new TlsMaterialError(
      'DEV_CA_IN_PRODUCTION',
      'SEALPOST_TLS_CA_FILE contains the Sealpost development CA; production must trust only its own CA',
    );
  }
}
