import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { renderConfigTable } from './config-table';
import { SERVICE_ENV_TOKEN } from './services';
import { SETTINGS } from './settings';
import { loadTelemetrySettings } from './telemetry-settings';
import { ConfigError } from './errors';
import { TEST_HARNESS_PREFIXES } from './load-config';

describe('settings table', () => {
  it('has each variable once, with a default, a description and services', () => {
    const names = SETTINGS.map((spec) => spec.name);
    expect(new Set(names).size).toBe(names.length);
    for (const spec of SETTINGS) {
      expect(spec.name).toMatch(/^SEALPOST_[A-Z0-9_]+$/);
      expect(spec.default.length).toBeGreaterThan(0);
      expect(spec.description.length).toBeGreaterThan(10);
      expect(spec.services === 'all' || spec.services.length > 0).toBe(true);
    }
    for (const token of Object.values(SERVICE_ENV_TOKEN)) {
      expect(names).toEqual(expect.arrayContaining([`SEALPOST_${token}_GRPC_ADDR`, `SEALPOST_${token}_HEALTH_ADDR`]));
    }
  });

  it('agrees with the code: every variable the package names is in the table, and every row is read', () => {
    const dir = __dirname;
    const source = readdirSync(dir)
      .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts') && file !== 'settings.ts')
      .map((file) => readFileSync(path.join(dir, file), 'utf8'))
      .join('\n');
    const table: ReadonlySet<string> = new Set(SETTINGS.map((spec) => spec.name));
    const mentioned = new Set(source.match(/SEALPOST_[A-Z0-9_]*[A-Z0-9]/g) ?? []);
    for (const name of mentioned) {
      if (TEST_HARNESS_PREFIXES.some((prefix) => prefix.startsWith(name))) continue;
      expect([name, table.has(name)]).toEqual([name, true]);
    }
    const perService = /^SEALPOST_[A-Z]+_(GRPC|HEALTH)_ADDR$/;
    for (const name of table) {
      if (!perService.test(name)) expect([name, mentioned.has(name)]).toEqual([name, true]);
    }
  });

  it('renders one Markdown row per setting, escaping pipes', () => {
    const markdown = renderConfigTable();
    const lines = markdown.trimEnd().split('\n');
    expect(lines[0]).toBe('| variable | default | services | description |');
    expect(lines).toHaveLength(SETTINGS.length + 2);
    for (const spec of SETTINGS) expect(markdown).toContain(`| \`${spec.name}\` |`);
    const piped = renderConfigTable([{ ...SETTINGS[0]!, description: 'a | b' }]);
    expect(piped).toContain('a \\| b');
  });
});

describe('loadTelemetrySettings', () => {
  it('is off without an endpoint and on with one', () => {
    expect(loadTelemetrySettings({ SEALPOST_SERVICE: 'consent' })).toEqual({
      service: 'consent',
      enabled: false,
      logLevel: 'info',
    });
    expect(
      loadTelemetrySettings({ SEALPOST_SERVICE: 'consent', SEALPOST_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }),
    ).toEqual({ service: 'consent', otlpEndpoint: 'http://127.0.0.1:4318', enabled: true, logLevel: 'info' });
  });

  it('names the missing or bad variable', () => {
    expect(() => loadTelemetrySettings({})).toThrow(/SEALPOST_SERVICE: required/);
    expect(() => loadTelemetrySettings({ SEALPOST_SERVICE: 'consent', SEALPOST_OTLP_ENDPOINT: '' })).toThrow(
      ConfigError,
    );
    expect(() => loadTelemetrySettings({ SEALPOST_SERVICE: 'consent', SEALPOST_LOG_LEVEL: 'loud' })).toThrow(
      /SEALPOST_LOG_LEVEL: must be one of/,
    );
  });
});
