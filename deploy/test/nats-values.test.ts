import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { natsValues, passwordEnvOf, renderNatsValues } from '../render-nats-values';
import { REPO_ROOT } from './lib/render';

const FILE = join(REPO_ROOT, 'deploy/nats-values.yaml');

describe('deploy/nats-values.yaml (NATS Helm values)', () => {
  const committed = readFileSync(FILE, 'utf8');

  it('is exactly what deploy/render-nats-values.ts renders from the bus topology', () => {
    // On failure: pnpm exec tsx deploy/render-nats-values.ts > deploy/nats-values.yaml
    expect(committed).toBe(renderNatsValues());
  });

  it('asks for what production refuses to run without: 3 replicas, file storage, TLS', () => {
    const v = parse(committed);
    expect(v.config.cluster).toMatchObject({ enabled: true, replicas: 3, tls: { enabled: true } });
    expect(v.config.jetstream).toMatchObject({
      enabled: true,
      fileStore: { enabled: true },
      memoryStore: { enabled: false },
    });
    expect(v.config.nats.tls.enabled).toBe(true);
  });

  it('has one user per service, passwords only as env references to a Secret, no delete or purge', () => {
    const v = parse(committed);
    const users: { user: string; password: string; permissions: { publish: { allow: string[]; deny: string[] } } }[] =
      v.config.merge.authorization.users;
    expect(users.map((u) => u.user)).toEqual(['contact-vault', 'consent', 'dispatch', 'audit', 'anomaly', 'identity']);
    for (const u of users) {
      expect(u.password).toBe(`<< $${passwordEnvOf(u.user)} >>`);
      expect(v.container.env[passwordEnvOf(u.user)].valueFrom.secretKeyRef.key).toBe(u.user);
      expect(u.permissions.publish.deny).toEqual(
        expect.arrayContaining(['$JS.API.STREAM.DELETE.>', '$JS.API.STREAM.PURGE.>']),
      );
      expect(u.permissions.publish.allow.some((s) => s.includes('STREAM.DELETE') || s.includes('STREAM.PURGE'))).toBe(
        false,
      );
    }
    // Only the audit service may publish tree heads; no service may publish another's audit source.
    const allow = (name: string) => users.find((u) => u.user === name)?.permissions.publish.allow ?? [];
    expect(allow('audit')).toContain('sealpost.treehead.>');
    expect(allow('contact-vault')).not.toContain('sealpost.treehead.>');
    expect(allow('contact-vault')).toContain('sealpost.audit.vault.>');
    expect(allow('contact-vault').some((s) => s.startsWith('sealpost.audit.') && s !== 'sealpost.audit.vault.>')).toBe(
      false,
    );
  });

  it('detects a hand edit (the comparison is not vacuous)', () => {
    const edited = committed.replace('- sealpost.vault.>', '- sealpost.>');
    expect(edited).not.toBe(committed);
    expect(edited).not.toBe(renderNatsValues());
    expect(natsValues()).toEqual(parse(committed));
  });
});
