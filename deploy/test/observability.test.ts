import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { dashboardExprs, exportedSeries, exprProblems } from './lib/metric-refs';
import { REPO_ROOT } from './lib/render';

const DEPLOY = join(REPO_ROOT, 'deploy');
const dashboards = readdirSync(join(DEPLOY, 'dashboards'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ file: f, json: JSON.parse(readFileSync(join(DEPLOY, 'dashboards', f), 'utf8')) }));
const alertRules: { alert: string; expr: string }[] = (
  parse(readFileSync(join(DEPLOY, 'alerts.yaml'), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] }
).groups.flatMap((g) => g.rules);
const collector = parse(readFileSync(join(DEPLOY, 'otel-collector.yaml'), 'utf8'));

describe('dashboards and alerts name only metrics the code exports', () => {
  it('the collector exports names unchanged (the mapping the checks rely on)', () => {
    expect(collector.exporters.prometheus.add_metric_suffixes).toBe(false);
    expect(collector.service.pipelines.metrics.exporters).toContain('prometheus');
    expect(collector.service.pipelines.traces.receivers).toEqual(['otlp']);
    expect(collector.receivers.otlp.protocols.http.endpoint).toMatch(/:4318$/);
  });

  it('there are dashboards, each with a unique uid and queries', () => {
    expect(dashboards.map((d) => d.file).sort()).toEqual(['sealpost-product.json', 'sealpost-services.json']);
    expect(new Set(dashboards.map((d) => d.json.uid)).size).toBe(dashboards.length);
    for (const d of dashboards) expect(dashboardExprs(d.json).length).toBeGreaterThan(5);
  });

  it.each(dashboards.map((d) => [d.file, d.json] as const))(
    '%s: every query names exported metrics and labels',
    (_f, json) => {
      const problems = dashboardExprs(json).flatMap((e) => exprProblems(e).map((p) => `${p} in ${e}`));
      expect(problems).toEqual([]);
    },
  );

  it('alerts.yaml: every rule names exported metrics and labels', () => {
    expect(alertRules.length).toBeGreaterThan(5);
    const problems = alertRules.flatMap((r) => exprProblems(r.expr).map((p) => `${r.alert}: ${p}`));
    expect(problems).toEqual([]);
  });

  it('the product dashboard and the alerts cover what SREs asked for', () => {
    const product = dashboardExprs(dashboards.find((d) => d.file === 'sealpost-product.json')?.json).join('\n');
    expect(product).toMatch(/sealpost_vault_contacts_upserted_total/);
    expect(product).toMatch(/by \(purpose\) \(increase\(sealpost_vault_reveals_total/);
    expect(product).toMatch(/sealpost_bus_consumer_lag\{stream="SEALPOST_AUDIT"\}/);
    expect(product).toMatch(/sealpost_key_cache_total\{outcome="hit"\}/);
    const alerts = alertRules.map((r) => r.expr).join('\n');
    for (const m of ['sealpost_bus_consumer_lag', 'sealpost_kms_calls_total', 'sealpost_grpc_server_requests_total']) {
      expect(alerts).toContain(m);
    }
    expect(alerts).toMatch(/stream="SEALPOST_AUDIT"/);
  });

  it.each([
    ['a metric that does not exist', 'rate(sealpost_contacts_total[5m])', 'sealpost_contacts_total: not exported'],
    ['a doubled counter suffix', 'rate(sealpost_vault_reveals_total_total[5m])', 'not exported'],
    [
      'a histogram by its bare name',
      'sealpost_grpc_server_duration_seconds{job="x"}',
      'sealpost_grpc_server_duration_seconds: not exported',
    ],
    ['a unit suffix the exporter does not add', 'sealpost_lease_held_ratio', 'not exported'],
    [
      'a label the metric does not have',
      'sum(rate(sealpost_vault_reveals_total{purpse="x"}[5m]))',
      'has no label purpse',
    ],
    ['le on a counter', 'sealpost_kms_calls_total{le="1"}', 'has no label le'],
    ['a grouping label nobody has', 'sum by (purpse) (sealpost_vault_reveals_total)', 'grouping label purpse'],
    ['a foreign metric', 'rate(http_requests_total{job="x"}[5m])', 'http_requests_total: not a Sealpost metric'],
  ])('refuses %s', (_title, expr, expected) => {
    expect(exprProblems(expr).join('\n')).toContain(expected);
  });

  // The same checks as above, on whole files: a panel nested in a row, a query variable and an alert rule that name
  // a metric the code does not export each make the suite fail.
  it('refuses a dashboard or an alert naming a metric that does not exist', () => {
    const problemsOf = (json: unknown) => dashboardExprs(json).flatMap((e) => exprProblems(e));
    const dashboard = structuredClone(dashboards[0]!.json);
    expect(problemsOf(dashboard)).toEqual([]);
    dashboard.panels.push({ type: 'row', panels: [{ targets: [{ expr: 'sum(rate(sealpost_contacts_total[5m]))' }] }] });
    expect(problemsOf(dashboard)).toEqual([
      'sealpost_contacts_total: not exported (not in METRIC_NAMES or wrong suffix)',
    ]);
    const variable = structuredClone(dashboards[0]!.json);
    variable.templating = {
      list: [{ type: 'query', name: 'x', query: { query: 'label_values(sealpost_nope, tenant)' } }],
    };
    expect(problemsOf(variable).join('\n')).toContain('sealpost_nope: not exported');
    const rules = [...alertRules, { alert: 'Bogus', expr: 'sealpost_vault_reveal_total > 0' }];
    expect(rules.flatMap((r) => exprProblems(r.expr))).toEqual([
      'sealpost_vault_reveal_total: not exported (not in METRIC_NAMES or wrong suffix)',
    ]);
  });

  it('accepts every exported series (the refusals above are not blanket)', () => {
    for (const name of exportedSeries().keys()) expect(exprProblems(`sum(${name})`)).toEqual([]);
  });
});
