/** Structure rules of deploy/compose.yaml (Docker is not available here, so the file is checked as data). */
import { SERVICE_GRPC_PORT, grpcAddrSetting } from '@sealpost/config';
import { isMap, isScalar, isSeq, parseDocument } from 'yaml';
import { grpcCallsOfAccessTable } from './grpc-calls';

/** Services the laptop stack must run: the Sealpost services that exist plus their peers. */
export const REQUIRED_SERVICES = ['contact-vault', 'audit', 'mongodb', 'otel-collector', 'jaeger', 'local-kms', 'ses'];
export const SEALPOST_SERVICES = ['contact-vault', 'audit'];

export type Compose = {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- compose services are read field by field
  services: Record<string, any>;
  secrets?: Record<string, { file?: string; environment?: string }>;
};

export function parseCompose(text: string): Compose {
  const doc = parseDocument(text, { merge: true });
  if (doc.errors.length > 0) throw new Error(`compose.yaml: ${doc.errors[0]?.message}`);
  return doc.toJS() as Compose;
}

const SECRET_NAME = /PASSWORD|SECRET|TOKEN|CREDENTIAL|PRIVATE|(^|_)KEY($|_)/;

/** Every problem found; `[]` when the file satisfies the rules. */
export function composeFindings(text: string): string[] {
  const out: string[] = [];
  const compose = parseCompose(text);
  const services = compose.services ?? {};
  for (const name of REQUIRED_SERVICES) if (!services[name]) out.push(`service ${name} missing`);
  if (!Object.keys(services).some((n) => /^nats/.test(n))) out.push('no NATS service');

  for (const [name, svc] of Object.entries(services)) {
    const env: Record<string, unknown> = Array.isArray(svc.environment)
      ? Object.fromEntries(svc.environment.map((e: string) => e.split(/=(.*)/s).slice(0, 2)))
      : (svc.environment ?? {});
    const secrets: string[] = (svc.secrets ?? []).map((s: string | { source: string }) =>
      typeof s === 'string' ? s : s.source,
    );
    for (const [key, raw] of Object.entries(env)) {
      const value = String(raw ?? '');
      // Flags (SEALPOST_DEV_TOKENS=false) and key ids are not secrets; anything else secret-named must be a file.
      const flag = /^(true|false)$/.test(value) || key.endsWith('_ID_TEMPLATE') || key.endsWith('_KEY_ID');
      if (SECRET_NAME.test(key) && !/_(FILE|PATH)$/.test(key) && !flag) {
        out.push(`${name}: environment ${key} holds a secret inline (use a *_FILE setting and secrets:)`);
      }
      if (/:\/\/[^/@\s]+:[^/@\s]+@/.test(value)) out.push(`${name}: environment ${key} has credentials in a URL`);
      if (/_FILE$|_PATH$/.test(key) && value.startsWith('/run/secrets/')) {
        const secret = value.slice('/run/secrets/'.length);
        if (!secrets.includes(secret))
          out.push(`${name}: ${key} reads /run/secrets/${secret}, which it does not mount`);
      }
    }
    for (const s of secrets) if (!compose.secrets?.[s]) out.push(`${name}: secret ${s} is not declared`);
    if (SEALPOST_SERVICES.includes(name)) {
      if (env.SEALPOST_MODE !== 'production') out.push(`${name}: SEALPOST_MODE must be production`);
      if (svc.read_only !== true) out.push(`${name}: read_only must be true`);
      if (!(svc.cap_drop ?? []).includes('ALL')) out.push(`${name}: cap_drop must include ALL`);
      if (!String(svc.user ?? '').startsWith('10001')) out.push(`${name}: must run as user 10001`);
    }
  }
  // A service that calls another over gRPC (the access table's service grants) must dial it on this network:
  // the production default address is the Kubernetes Service name (sealpost-<service>), unknown here.
  for (const { caller, callee } of grpcCallsOfAccessTable()) {
    if (!SEALPOST_SERVICES.includes(caller) || !SEALPOST_SERVICES.includes(callee) || !services[caller]) continue;
    const setting = grpcAddrSetting(callee);
    const value = String(services[caller].environment?.[setting] ?? `sealpost-${callee}:${SERVICE_GRPC_PORT[callee]}`);
    if (value !== `${callee}:${SERVICE_GRPC_PORT[callee]}`)
      out.push(
        `${caller}: calls ${callee} over gRPC, but ${setting} is ${value}, not ${callee}:${SERVICE_GRPC_PORT[callee]}`,
      );
  }
  for (const [name, s] of Object.entries(compose.secrets ?? {})) {
    if (s.file === undefined) out.push(`secret ${name}: must come from a file`);
    else if (!s.file.startsWith('./compose/.state/'))
      out.push(`secret ${name}: file outside the gitignored compose/.state`);
  }
  out.push(...undocumentedPorts(text));
  return out;
}

/** Published ports without a same-line comment, or bound to all interfaces. */
export function undocumentedPorts(text: string): string[] {
  const out: string[] = [];
  const doc = parseDocument(text, { merge: true });
  const services = doc.get('services');
  if (!isMap(services)) return ['services: not a mapping'];
  for (const pair of services.items) {
    const name = String(isScalar(pair.key) ? pair.key.value : pair.key);
    const ports = isMap(pair.value) ? pair.value.get('ports', true) : undefined;
    if (!isSeq(ports)) continue;
    for (const item of ports.items) {
      const value = String(isScalar(item) ? item.value : JSON.stringify(item));
      const comment = isScalar(item) ? (item.comment ?? '').trim() : '';
      if (comment.length < 5) out.push(`${name}: published port ${value} is not documented (comment on its line)`);
      if (!value.startsWith('127.0.0.1:')) out.push(`${name}: port ${value} must bind 127.0.0.1 only`);
    }
  }
  return out;
}
