import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, isServiceName } from '@sealpost/config';
import { composeFindings, parseCompose, SEALPOST_SERVICES } from './lib/compose-rules';
import { REPO_ROOT } from './lib/render';

const text = readFileSync(join(REPO_ROOT, 'deploy/compose.yaml'), 'utf8');

describe('deploy/compose.yaml (laptop full stack, checked as data)', () => {
  it('has every service, no inline secret, production mode, and every published port documented', () => {
    expect(composeFindings(text)).toEqual([]);
  });

  it('keeps the generated secrets out of git', () => {
    expect(readFileSync(join(REPO_ROOT, 'deploy/compose/.gitignore'), 'utf8')).toMatch(/^\.state\/$/m);
  });

  it.each(SEALPOST_SERVICES)('%s: its environment is a valid production configuration', (service) => {
    const env = parseCompose(text).services[service].environment as Record<string, string>;
    if (!isServiceName(service)) throw new Error(service);
    const sealpostEnv = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('SEALPOST_')));
    const config = loadConfig(service, sealpostEnv);
    expect(config.mode).toBe('production');
    expect(config.kms.kind === 'aws' && config.kms.endpoint).toMatch(/^https:/);
  });

  it.each([
    ['a missing service', (t: string) => t.replace(/^ {2}jaeger:$/m, '  tracing:'), 'service jaeger missing'],
    [
      'an inline password',
      (t: string) => t.replace('SEALPOST_SERVICE: audit', 'SEALPOST_SERVICE: audit\n      MONGO_PASSWORD: hunter2'),
      'audit: environment MONGO_PASSWORD holds a secret inline',
    ],
    [
      'credentials in a URL',
      (t: string) => t.replace('mongodb://mongodb:27017/', 'mongodb://u:p@mongodb:27017/'),
      'has credentials in a URL',
    ],
    [
      'embedded mode',
      (t: string) =>
        t.replace('SEALPOST_SERVICE: contact-vault', 'SEALPOST_SERVICE: contact-vault\n      SEALPOST_MODE: embedded'),
      'contact-vault: SEALPOST_MODE must be production',
    ],
    [
      'an undocumented port',
      (t: string) => t.replace(/(["']127\.0\.0\.1:16686:16686["']) # Jaeger UI/, '$1'),
      'jaeger: published port 127.0.0.1:16686:16686 is not documented',
    ],
    [
      'a port on all interfaces',
      (t: string) => t.replace(/(["'])127\.0\.0\.1:8889:8889/, '$18889:8889'),
      'port 8889:8889 must bind 127.0.0.1 only',
    ],
    [
      'a secret file that is not mounted',
      (t: string) => t.replace('nats_audit_password, mongo_audit_password]', 'mongo_audit_password]'),
      'audit: SEALPOST_NATS_PASSWORD_FILE reads /run/secrets/nats_audit_password, which it does not mount',
    ],
    [
      'a caller without the address of the service it calls',
      (t: string) => t.replace(/\n +SEALPOST_AUDIT_GRPC_ADDR: audit:7404/, ''),
      'contact-vault: calls audit over gRPC, but SEALPOST_AUDIT_GRPC_ADDR is sealpost-audit:7404, not audit:7404',
    ],
    [
      'a secret from the environment',
      (t: string) => t.replace('jwks: { file: ./compose/.state/secrets/jwks }', 'jwks: { environment: JWKS }'),
      'secret jwks: must come from a file',
    ],
  ])('refuses %s', (_title, mutate, expected) => {
    const mutated = mutate(text);
    expect(mutated).not.toBe(text);
    expect(composeFindings(mutated).join('\n')).toContain(expected);
  });
});
