import * as crypto from 'node:crypto';
import * as fs from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import * as x509 from '@peculiar/x509';
import { certificateAuthorityFrom, generateCaMaterial, parseCertificates, uriSansOf } from './certificate-authority';
import { DEV_CA_COMMON_NAME, DEV_TRUST_DOMAIN, openDevCa, writeDevTlsFiles } from './dev-ca';
import { assertProductionTrustBundle, loadTlsMaterial } from './tls-material';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealpost-ca-'));
});
afterEach(() => fs.rm(dir, { recursive: true, force: true }));

describe('dev CA', () => {
  it('is created once, key mode 0600, and marked as the dev CA of the dev trust domain', async () => {
    const ca = await openDevCa({ dir, mode: 'development' });
    expect((await fs.stat(path.join(dir, 'dev-ca.key'))).mode & 0o777).toBe(0o600);
    const again = await openDevCa({ dir, mode: 'development' });
    expect(again.certPem).toBe(ca.certPem);
    const [cert] = parseCertificates(ca.certPem);
    expect(cert!.subjectName.getField('CN')).toEqual([DEV_CA_COMMON_NAME]);
    expect(uriSansOf(cert!)).toEqual([`spiffe://${DEV_TRUST_DOMAIN}`]);
  });

  it('issues short-lived leaves with the SPIFFE id, and localhost names for servers only', async () => {
    const ca = await openDevCa({ dir, mode: 'development' });
    const server = await ca.issue({ service: 'contact-vault' });
    const client = await ca.issue({ service: 'dispatch', usage: 'client', ttlSeconds: 600 });
    const serverCert = new crypto.X509Certificate(server.certPem);
    expect(serverCert.subjectAltName).toBe(
      'URI:spiffe://sealpost.dev/contact-vault, DNS:localhost, IP Address:127.0.0.1',
    );
    expect(new crypto.X509Certificate(client.certPem).subjectAltName).toBe('URI:spiffe://sealpost.dev/dispatch');
    expect(serverCert.verify(new crypto.X509Certificate(ca.certPem).publicKey)).toBe(true);
    expect(new Date(new crypto.X509Certificate(client.certPem).validTo).getTime() - Date.now()).toBeLessThan(700_000);
    expect(crypto.createPrivateKey(client.keyPem).asymmetricKeyDetails).toMatchObject({ namedCurve: 'prime256v1' });
  });

  it('refuses service names that would not round-trip as a SPIFFE path', async () => {
    const ca = await openDevCa({ dir, mode: 'development' });
    for (const bad of ['', 'Dispatch', 'a/b', '../x', 'x?y'])
      await expect(ca.issue({ service: bad })).rejects.toThrow(TypeError);
  });

  it('writes per-service files that loadTlsMaterial reads; key files are 0600', async () => {
    const files = await writeDevTlsFiles({ dir, mode: 'development', service: 'consent' });
    expect((await fs.stat(files.keyFile)).mode & 0o777).toBe(0o600);
    const material = await loadTlsMaterial(files);
    expect(material.ca.toString()).toContain('BEGIN CERTIFICATE');
  });

  it('is refused in production and writes nothing', async () => {
    await expect(openDevCa({ dir, mode: 'production' })).rejects.toMatchObject({ code: 'DEV_MODE_REFUSED' });
    await expect(writeDevTlsFiles({ dir, mode: 'production', service: 'consent' })).rejects.toMatchObject({
      code: 'DEV_MODE_REFUSED',
    });
    await expect(fs.readdir(dir)).resolves.toEqual([]);
  });

  it('cannot vouch for an identity outside its trust domain (name constraints, checked by a real TLS handshake)', async () => {
    const ca = await openDevCa({ dir, mode: 'development' });
    const server = await ca.issue({ service: 'contact-vault' });
    // Forge a leaf with the dev CA key for a production SPIFFE id: exactly what a leaked laptop key would allow.
    const caKeyPem = await fs.readFile(path.join(dir, 'dev-ca.key'), 'utf8');
    const der = Buffer.from(caKeyPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
    const caKey = await crypto.webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: 'P-256' }, false, [
      'sign',
    ]);
    const keys = await crypto.webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ]);
    const forge = async (uri: string) => {
      const cert = await x509.X509CertificateGenerator.create({
        subject: 'CN=dispatch',
        issuer: new x509.X509Certificate(ca.certPem).subject,
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(Date.now() + 3_600_000),
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        publicKey: keys.publicKey as never,
        signingKey: caKey as never,
        extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }])],
      });
      return cert.toString('pem');
    };
    const keyPem = `-----BEGIN PRIVATE KEY-----\n${Buffer.from(await crypto.webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64')}\n-----END PRIVATE KEY-----\n`;
    const handshake = async (certPem: string): Promise<boolean> => {
      const srv = tls.createServer(
        { key: server.keyPem, cert: server.certPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true },
        (s) => s.end('ok'),
      );
      await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
      try {
        return await new Promise<boolean>((resolve) => {
          const s = tls.connect({
            port: (srv.address() as AddressInfo).port,
            host: '127.0.0.1',
            servername: 'localhost',
            ca: ca.certPem,
            cert: certPem,
            key: keyPem,
          });
          s.on('data', () => resolve(true));
          s.on('error', () => resolve(false));
          s.on('close', () => resolve(false));
        });
      } finally {
        srv.close();
      }
    };
    expect(await handshake(await forge('spiffe://sealpost.dev/dispatch'))).toBe(true);
    expect(await handshake(await forge('spiffe://prod.example/dispatch'))).toBe(false);
  });
});

describe('assertProductionTrustBundle', () => {
  it('accepts a bundle of production CAs', async () => {
    const prod = await generateCaMaterial({ commonName: 'Example Prod CA', trustDomain: 'prod.example' });
    const other = await generateCaMaterial({ commonName: 'Example Other CA', trustDomain: 'other.example' });
    expect(() => assertProductionTrustBundle(prod.certPem + other.certPem)).not.toThrow();
  });

  it('refuses the dev CA anywhere in the bundle, and dev-domain leaves, naming SEALPOST_TLS_CA_FILE', async () => {
    const prod = await generateCaMaterial({ commonName: 'Example Prod CA', trustDomain: 'prod.example' });
    const dev = await openDevCa({ dir, mode: 'development' });
    const devLeaf = await dev.issue({ service: 'dispatch' });
    // A CA that copies the dev trust domain but not the CN is still refused.
    const lookalike = await generateCaMaterial({ commonName: 'Totally Production CA', trustDomain: DEV_TRUST_DOMAIN });
    for (const bundle of [dev.certPem, prod.certPem + dev.certPem, prod.certPem + devLeaf.certPem, lookalike.certPem]) {
      expect(() => assertProductionTrustBundle(bundle)).toThrow(
        expect.objectContaining({
          code: 'DEV_CA_IN_PRODUCTION',
          message: expect.stringContaining('SEALPOST_TLS_CA_FILE'),
        }),
      );
    }
  });

  it('refuses an empty or malformed bundle', () => {
    for (const bad of ['', 'hello', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n']) {
      expect(() => assertProductionTrustBundle(bad)).toThrow(expect.objectContaining({ code: 'TLS_MATERIAL_INVALID' }));
    }
  });

  it('loadTlsMaterial names the unreadable file without its content', async () => {
    await fs.writeFile(path.join(dir, 'ca.pem'), 'secret-looking junk');
    await expect(
      loadTlsMaterial({
        caFile: path.join(dir, 'ca.pem'),
        certFile: path.join(dir, 'x.crt'),
        keyFile: path.join(dir, 'x.key'),
      }),
    ).rejects.toMatchObject({ code: 'TLS_MATERIAL_INVALID', message: expect.stringContaining('x.crt') });
    const files = await writeDevTlsFiles({ dir, mode: 'development', service: 'consent' });
    await fs.writeFile(files.caFile, 'secret-looking junk');
    const err = await loadTlsMaterial(files).catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'TLS_MATERIAL_INVALID' });
    expect((err as Error).message).not.toContain('junk');
  });

  it('certificateAuthorityFrom refuses material for another trust domain', async () => {
    const prod = await generateCaMaterial({ commonName: 'Example Prod CA', trustDomain: 'prod.example' });
    await expect(certificateAuthorityFrom(prod, DEV_TRUST_DOMAIN)).rejects.toThrow(/trust domain/);
  });
});
