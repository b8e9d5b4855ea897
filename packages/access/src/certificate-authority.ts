import * as crypto from 'node:crypto';
import * as x509 from '@peculiar/x509';

type CryptoKey = crypto.webcrypto.CryptoKey;
type CryptoKeyPair = crypto.webcrypto.CryptoKeyPair;

// @peculiar/x509 signs through WebCrypto; Node's implementation is the one to use.
x509.cryptoProvider.set(crypto.webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[1]);

const subtle = crypto.webcrypto.subtle;
const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** A leaf certificate and its private key, PEM-encoded. */
export interface IssuedCertificate {
  readonly certPem: string;
  readonly keyPem: string;
  readonly spiffeId: string;
  readonly notAfter: Date;
}

export interface IssueOptions {
  /** Service name; becomes the path of the URI SAN `spiffe://<trust-domain>/<service>`. */
  readonly service: string;
  /** `server` certs also carry DNS:localhost and IP:127.0.0.1 and serve both TLS roles; default `server`. */
  readonly usage?: 'server' | 'client';
  /** Lifetime; default 24 h (short on purpose: dev certificates are re-issued at every start). */
  readonly ttlSeconds?: number;
  /** Start of validity; default one minute ago (tolerates small clock skew between processes). */
  readonly notBefore?: Date;
}

/** A CA that can issue SPIFFE-style leaf certificates for one trust domain. */
export interface CertificateAuthority {
  readonly trustDomain: string;
  readonly certPem: string;
  issue(options: IssueOptions): Promise<IssuedCertificate>;
}

const SERVICE_NAME = /^[a-z][a-z0-9-]{0,62}$/;
const TRUST_DOMAIN = /^[a-z0-9]([a-z0-9.-]{0,253}[a-z0-9])?$/;

export function assertTrustDomain(trustDomain: string): void {
  if (!TRUST_DOMAIN.test(trustDomain)) throw new TypeError(`invalid trust domain: ${trustDomain}`);
}

/** `spiffe://<trust-domain>/<service>`; throws on names that would not round-trip through the parser. */
export function spiffeIdOf(trustDomain: string, service: string): string {
  assertTrustDomain(trustDomain);
  if (!SERVICE_NAME.test(service)) throw new TypeError(`invalid service name: ${service}`);
  return `spiffe://${trustDomain}/${service}`;
}

/**
 * DER of a NameConstraints extension value that permits only URIs in `trustDomain`, DNS `localhost` and
 * 127.0.0.0/8 — so a leaked development CA key cannot vouch for any real host or foreign SPIFFE identity.
 */
function nameConstraintsDer(trustDomain: string): Uint8Array {
  const tlv = (tag: number, body: Uint8Array): Uint8Array => {
    if (body.length > 0xffff) throw new RangeError('too long');
    const len =
      body.length < 0x80
        ? [body.length]
        : body.length < 0x100
          ? [0x81, body.length]
          : [0x82, body.length >> 8, body.length & 0xff];
    return Uint8Array.from([tag, ...len, ...body]);
  };
  const ascii = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'ascii'));
  const subtree = (generalName: Uint8Array): Uint8Array => tlv(0x30, generalName);
  const subtrees = [
    subtree(tlv(0x86, ascii(trustDomain))), // uniformResourceIdentifier: host part must equal the trust domain
    subtree(tlv(0x82, ascii('localhost'))), // dNSName
    subtree(tlv(0x87, Uint8Array.from([127, 0, 0, 0, 255, 0, 0, 0]))), // iPAddress 127.0.0.0/8
  ];
  const permitted = tlv(0xa0, Uint8Array.from(subtrees.flatMap((s) => [...s])));
  return tlv(0x30, permitted);
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .trimEnd()}\n-----END PRIVATE KEY-----\n`;
}

async function importKeyPem(pem: string): Promise<CryptoKey> {
  const body = pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, '').replace(/\s+/g, '');
  return subtle.importKey('pkcs8', Buffer.from(body, 'base64'), EC_KEY, false, ['sign']);
}

function toPem(cert: x509.X509Certificate): string {
  return `${cert.toString('pem')}\n`;
}

export interface CaParams {
  readonly commonName: string;
  readonly trustDomain: string;
  readonly validityDays?: number;
}

/** Persistable form of a CA: certificate and PKCS#8 key, PEM. */
export interface CaMaterial {
  readonly certPem: string;
  readonly keyPem: string;
}

/** Creates a new self-signed ECDSA P-256 CA constrained to its trust domain (in memory; the caller persists it). */
export async function generateCaMaterial(params: CaParams): Promise<CaMaterial> {
  assertTrustDomain(params.trustDomain);
  const keys = (await subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: crypto
      .randomBytes(16)
      .toString('hex')
      .replace(/^[89a-f]/, '1'),
    name: [{ CN: [params.commonName] }, { O: ['Sealpost'] }],
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + (params.validityDays ?? 90) * 86_400_000),
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      // The trust domain in the CA's own SAN marks which SPIFFE domain it speaks for (and lets a bundle check spot it).
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${params.trustDomain}` }], false),
      new x509.Extension('2.5.29.30', true, nameConstraintsDer(params.trustDomain)),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: toPem(cert), keyPem: await exportKeyPem(keys.privateKey) };
}

/** A CA from its persisted material; refuses material whose certificate does not speak for `trustDomain`. */
export async function certificateAuthorityFrom(
  material: CaMaterial,
  trustDomain: string,
): Promise<CertificateAuthority> {
  assertTrustDomain(trustDomain);
  const caCert = new x509.X509Certificate(material.certPem);
  const caKey = await importKeyPem(material.keyPem);
  const san = caCert.getExtension(x509.SubjectAlternativeNameExtension);
  const domains = san?.names.items.filter((n) => n.type === 'url').map((n) => n.value) ?? [];
  if (!domains.includes(`spiffe://${trustDomain}`)) {
    throw new TypeError(`CA certificate does not speak for trust domain ${trustDomain}`);
  }
  const authorityKeyId = await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey);

  return {
    trustDomain,
    certPem: material.certPem,
    async issue(options: IssueOptions): Promise<IssuedCertificate> {
      const spiffeId = spiffeIdOf(trustDomain, options.service);
      const usage = options.usage ?? 'server';
      const keys = (await subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as CryptoKeyPair;
      const notBefore = options.notBefore ?? new Date(Date.now() - 60_000);
      const notAfter = new Date(notBefore.getTime() + 60_000 + (options.ttlSeconds ?? 86_400) * 1000);
      const names: x509.JsonGeneralName[] = [{ type: 'url', value: spiffeId }];
      if (usage === 'server') names.push({ type: 'dns', value: 'localhost' }, { type: 'ip', value: '127.0.0.1' });
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: crypto
          .randomBytes(16)
          .toString('hex')
          .replace(/^[89a-f]/, '1'),
        subject: [{ CN: [options.service] }, { O: ['Sealpost'] }],
        issuer: caCert.subject,
        notBefore,
        notAfter,
        signingAlgorithm: SIGNING,
        publicKey: keys.publicKey,
        signingKey: caKey,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension(
            usage === 'server'
              ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]
              : [x509.ExtendedKeyUsage.clientAuth],
          ),
          // The URI SAN is the identity (SPIFFE X.509-SVID); peers ignore the CN.
          new x509.SubjectAlternativeNameExtension(names, false),
          authorityKeyId,
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        ],
      });
      return { certPem: toPem(cert), keyPem: await exportKeyPem(keys.privateKey), spiffeId, notAfter };
    },
  };
}

/** Parses every certificate in a PEM bundle; throws TypeError if there is none or one is malformed. */
export function parseCertificates(pem: string): x509.X509Certificate[] {
  const certs = x509.PemConverter.decodeWithHeaders(pem)
    .filter((block) => block.type === 'CERTIFICATE')
    .map((block) => new x509.X509Certificate(block.rawData));
  if (certs.length === 0) throw new TypeError('no certificate in PEM bundle');
  return certs;
}

/** URI SANs of a certificate (empty when it has none). */
export function uriSansOf(cert: x509.X509Certificate): string[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return san?.names.items.filter((n) => n.type === 'url').map((n) => n.value) ?? [];
}
