/**
 * Which Prometheus series Sealpost exports, and which series a dashboard or alert names. The collector
 * (deploy/otel-collector.yaml) exports with `add_metric_suffixes: false`, so a metric's Prometheus name is
 * its name in METRICS (which already carries `_total` and unit suffixes); histograms add _bucket, _sum
 * and _count.
 */
import { METRICS, type MetricSpec } from '@sealpost/telemetry';

/** Label keys every series has beside its own: added by the exporter (`job`, `instance`). */
const EXPORTER_LABELS = ['job', 'instance'];

/** Exported series name → the metric spec it comes from (and whether it is a histogram bucket). */
export function exportedSeries(): Map<string, { spec: MetricSpec; bucket: boolean }> {
  const out = new Map<string, { spec: MetricSpec; bucket: boolean }>();
  for (const [name, spec] of Object.entries(METRICS) as [string, MetricSpec][]) {
    if (spec.kind === 'histogram') {
      out.set(`${name}_bucket`, { spec, bucket: true });
      out.set(`${name}_sum`, { spec, bucket: false });
      out.set(`${name}_count`, { spec, bucket: false });
    } else {
      out.set(name, { spec, bucket: false });
    }
  }
  return out;
}

/** Problems with one PromQL expression: unknown metrics, non-Sealpost selectors, unknown label keys. */
export function exprProblems(expr: string): string[] {
  const series = exportedSeries();
  const problems: string[] = [];
  // Strip string literals so label values ("SEALPOST_AUDIT", "sealpost/sealpost-x") are not read as names.
  const code = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const names = new Set(code.match(/\b[a-zA-Z_:][a-zA-Z0-9_:]*(?=\s*[{[])/g) ?? []);
  for (const m of code.matchAll(/\bsealpost_[a-z0-9_]+\b/g)) names.add(m[0]);
  for (const name of names) {
    if (!name.startsWith('sealpost_')) problems.push(`${name}: not a Sealpost metric`);
    else if (!series.has(name)) problems.push(`${name}: not exported (not in METRIC_NAMES or wrong suffix)`);
  }
  for (const m of expr.matchAll(/\b(sealpost_[a-z0-9_]+)\s*\{([^}]*)\}/g)) {
    const entry = series.get(m[1] ?? '');
    if (!entry) continue;
    const allowed = [...entry.spec.labels, ...EXPORTER_LABELS, ...(entry.bucket ? ['le'] : [])];
    const body = (m[2] ?? '').replace(/"(?:[^"\\]|\\.)*"/g, '""');
    for (const l of body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) {
      if (!allowed.includes(l[1] ?? '')) problems.push(`${m[1]}: has no label ${l[1]}`);
    }
  }
  // Grouping labels must exist on some Sealpost series (catches typos such as `by (purpse)`).
  const known = new Set([...EXPORTER_LABELS, 'le', ...Object.values(METRICS).flatMap((s) => [...s.labels])]);
  for (const g of code.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
    for (const label of (g[1] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      if (!known.has(label)) problems.push(`grouping label ${label}: no Sealpost metric has it`);
    }
  }
  return problems;
}

/** Every PromQL expression of a Grafana dashboard (panels, nested row panels, templating queries). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function dashboardExprs(dashboard: any): string[] {
  const out: string[] = [];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const visit = (panels: any[] | undefined) => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) if (typeof t.expr === 'string') out.push(t.expr);
      visit(p.panels);
    }
  };
  visit(dashboard.panels);
  // Query variables (`label_values(sealpost_…, label)`); datasource and custom variables hold no PromQL.
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const query = typeof v.query === 'string' ? v.query : v.query?.query;
    if (typeof query === 'string') out.push(query);
  }
  return out;
}
