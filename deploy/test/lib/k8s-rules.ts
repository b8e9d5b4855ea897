/**
 * Rules every rendered Sealpost manifest set must satisfy: restricted pod security, probes, resources,
 * secrets as files, workload identity, NetworkPolicy coverage, and kube-linter's default checks.
 * kube-linter itself is not served here (the Go module proxy answers 403 for golang.stackrox.io/kube-linter
 * and github.com/stackrox/kube-linter), so each of its default checks is reimplemented below: a finding that
 * stands for a kube-linter check ends with its name in parentheses, e.g. `(run-as-non-root)`, and
 * KUBE_LINTER_DEFAULT_CHECKS lists every default check (a test proves each one fails on a bad manifest).
 * When a kube-linter binary is available, scripts/k8s-check.sh runs it as well (config: k8s/.kube-linter.yaml).
 * Each rule returns findings `<kind>/<name>: <problem>`; an empty list means the set passes.
 */
import type { K8sObject } from './render';

/**
 * kube-linter's checks that are enabled by default ("Enabled by default: Yes" in kube-linter's
 * docs/generated/checks.md, 0.7/0.8 series). Every one has a rule here whose finding carries the check's name.
 */
export const KUBE_LINTER_DEFAULT_CHECKS = [
  'dangling-service',
  'deprecated-service-account-field',
  'docker-sock',
  'drop-net-raw-capability',
  'duplicate-env-var',
  'env-var-secret',
  'host-ipc',
  'host-network',
  'host-pid',
  'invalid-target-ports',
  'latest-tag',
  'liveness-port',
  'mismatching-selector',
  'no-anti-affinity',
  'no-extensions-v1beta',
  'no-read-only-root-fs',
  'non-existent-service-account',
  'pdb-max-unavailable',
  'pdb-min-available',
  'pdb-unhealthy-pod-eviction-policy',
  'privilege-escalation-container',
  'privileged-container',
  'readiness-port',
  'run-as-non-root',
  'sensitive-host-mounts',
  'ssh-port',
  'startup-port',
  'unsafe-sysctls',
  'unset-cpu-requirements',
  'unset-memory-requirements',
] as const;

/**
 * kube-linter checks that are off by default but hold for Sealpost; the rules here enforce them too, and
 * k8s/.kube-linter.yaml includes them when the real binary runs.
 */
export const KUBE_LINTER_EXTRA_CHECKS = [
  'dangling-horizontalpodautoscaler',
  'dangling-networkpolicy',
  'default-service-account',
  'no-liveness-probe',
  'no-readiness-probe',
  'non-isolated-pod',
  'use-namespace',
] as const;

/** kube-linter's sensitive-host-mounts and docker-sock directories. */
const SENSITIVE_HOST_PATHS = [/^\/$/, /^\/boot$/, /^\/dev$/, /^\/etc$/, /^\/lib$/, /^\/proc$/, /^\/sys$/, /^\/usr$/];
/** IANA service names (RFC 6335 5.1), what Kubernetes requires of port names: kube-linter's invalid-target-ports. */
const PORT_NAME = /^(?=.*[a-z])(?!.*--)[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/;

const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob'];
/** Services whose pods call AWS (KMS, SES, SNS, STS) and so need an IRSA role; see settings.ts AWS_USERS. */
export const AWS_SERVICES = ['contact-vault', 'consent', 'audit', 'identity', 'dispatch'];
/** The single leased writers: one replica, no autoscaler, a PDB that allows eviction. */
export const SINGLE_WRITERS = ['audit'];
const SPIFFE_DRIVER = 'spiffe.csi.cert-manager.io';
const MIN_UID = 10000;
/** Seconds allowed for endpoints removal on top of SEALPOST_DRAIN_SECONDS. */
const DRAIN_MARGIN_SECONDS = 5;

export function id(o: K8sObject): string {
  return `${o.kind}/${o.metadata.name}`;
}

export function workloads(objects: readonly K8sObject[]): K8sObject[] {
  return objects.filter((o) => WORKLOAD_KINDS.includes(o.kind));
}

/** The pod template spec of a workload. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- structural reads of rendered YAML
export function podSpecOf(w: K8sObject): any {
  return w.kind === 'CronJob' ? w.spec?.jobTemplate?.spec?.template?.spec : w.spec?.template?.spec;
}

function podLabelsOf(w: K8sObject): Record<string, string> {
  const template = w.kind === 'CronJob' ? w.spec?.jobTemplate?.spec?.template : w.spec?.template;
  return template?.metadata?.labels ?? {};
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function containersOf(w: K8sObject): any[] {
  const spec = podSpecOf(w) ?? {};
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
}

/** Label selector semantics (matchLabels and matchExpressions In/NotIn/Exists/DoesNotExist). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function selectorMatches(selector: any, labels: Record<string, string>): boolean {
  if (selector === undefined || selector === null) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const value = labels[e.key];
    if (e.operator === 'In' && !(has && e.values.includes(value))) return false;
    if (e.operator === 'NotIn' && has && e.values.includes(value)) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function isEmptySelector(selector: any): boolean {
  return Object.keys(selector?.matchLabels ?? {}).length === 0 && (selector?.matchExpressions ?? []).length === 0;
}

/** The environment a container sees from `env` and `envFrom` ConfigMaps (values only; refs are named). */
export function containerEnv(
  objects: readonly K8sObject[],
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  container: any,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) {
      const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === from.configMapRef.name);
      Object.assign(env, cm?.data ?? {});
    }
  }
  for (const e of container.env ?? []) if (typeof e.value === 'string') env[e.name] = e.value;
  return env;
}

function serviceNameOf(w: K8sObject): string {
  return podLabelsOf(w)['app.kubernetes.io/name'] ?? w.metadata.name;
}

/** The port a probe connects to (gRPC, HTTP or TCP), by number or name; undefined for exec probes. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function probePort(probe: any): number | string | undefined {
  return probe?.grpc?.port ?? probe?.httpGet?.port ?? probe?.tcpSocket?.port;
}

/** A PDB's minAvailable / maxUnavailable as a pod count for `replicas` (percentages round up, as Kubernetes does). */
function podCount(value: number | string, replicas: number): number {
  const percent = /^(\d+)%$/.exec(String(value));
  return percent ? Math.ceil((Number(percent[1]) * replicas) / 100) : Number(value);
}

/** Restricted pod security and the runtime settings DESIGN.md asks of every workload. */
export function securityFindings(objects: readonly K8sObject[]): string[] {
  const out: string[] = [];
  for (const w of workloads(objects)) {
    const at = (problem: string) => out.push(`${id(w)}: ${problem}`);
    const pod = podSpecOf(w);
    if (!pod) {
      at('has no pod template');
      continue;
    }
    const psc = pod.securityContext ?? {};
    if (pod.automountServiceAccountToken !== false) at('automountServiceAccountToken must be false');
    if (pod.enableServiceLinks !== false)
      at('enableServiceLinks must be false (service links inject SEALPOST_* variables)');
    if (pod.hostNetwork === true) at('uses a host namespace: hostNetwork (host-network)');
    if (pod.hostPID === true) at('uses a host namespace: hostPID (host-pid)');
    if (pod.hostIPC === true) at('uses a host namespace: hostIPC (host-ipc)');
    if (pod.serviceAccount !== undefined)
      at('sets the deprecated serviceAccount field (deprecated-service-account-field)');
    if (psc.runAsNonRoot !== true) at('pod securityContext.runAsNonRoot must be true (run-as-non-root)');
    if (!(Number.isInteger(psc.runAsUser) && psc.runAsUser >= MIN_UID))
      at(`pod securityContext.runAsUser must be >= ${MIN_UID}`);
    if (psc.seccompProfile?.type !== 'RuntimeDefault') at('pod seccompProfile must be RuntimeDefault');
    if ((psc.sysctls ?? []).length > 0) at('sets sysctls (unsafe-sysctls)');

    const volumes: { name: string; [k: string]: unknown }[] = pod.volumes ?? [];
    for (const v of volumes) {
      if (!('hostPath' in v)) continue;
      const path = String((v.hostPath as { path?: string } | undefined)?.path ?? '');
      const tag = /docker\.sock$/.test(path)
        ? ' (docker-sock)'
        : SENSITIVE_HOST_PATHS.some((re) => re.test(path.replace(/\/+$/, '') || '/'))
          ? ' (sensitive-host-mounts)'
          : '';
      at(`volume ${v.name} is a hostPath${tag}`);
    }
    const spiffe = volumes.find((v) => (v.csi as { driver?: string } | undefined)?.driver === SPIFFE_DRIVER);
    if (!spiffe) at(`has no ${SPIFFE_DRIVER} volume (mTLS certificate bound to the service account)`);
    if (!pod.serviceAccountName || pod.serviceAccountName === 'default')
      at('needs its own serviceAccountName (default-service-account)');
    else if (!objects.some((o) => o.kind === 'ServiceAccount' && o.metadata.name === pod.serviceAccountName)) {
      at(`serviceAccountName ${pod.serviceAccountName} is not rendered (non-existent-service-account)`);
    }

    for (const c of containersOf(w)) {
      const cat = (problem: string) => at(`container ${c.name}: ${problem}`);
      const sc = c.securityContext ?? {};
      if (sc.allowPrivilegeEscalation !== false)
        cat('allowPrivilegeEscalation must be false (privilege-escalation-container)');
      if (sc.readOnlyRootFilesystem !== true) cat('readOnlyRootFilesystem must be true (no-read-only-root-fs)');
      if (sc.privileged === true) cat('must not be privileged (privileged-container)');
      const drop: string[] = sc.capabilities?.drop ?? [];
      if (!drop.includes('ALL')) cat('capabilities.drop must include ALL');
      if (!drop.includes('ALL') && !drop.includes('NET_RAW')) cat('does not drop NET_RAW (drop-net-raw-capability)');
      if ((sc.capabilities?.add ?? []).length > 0) cat('must not add capabilities');
      if ((sc.runAsNonRoot ?? psc.runAsNonRoot) !== true) cat('runAsNonRoot must be true (run-as-non-root)');
      if (sc.runAsUser !== undefined && sc.runAsUser < MIN_UID) cat(`runAsUser must be >= ${MIN_UID}`);
      if ((sc.seccompProfile?.type ?? psc.seccompProfile?.type) !== 'RuntimeDefault')
        cat('seccompProfile must be RuntimeDefault');

      for (const kind of ['requests', 'limits'] as const) {
        for (const r of ['cpu', 'memory'])
          if (c.resources?.[kind]?.[r] === undefined) cat(`resources.${kind}.${r} missing (unset-${r}-requirements)`);
      }

      const image: string = c.image ?? '';
      const tag = image.includes('@') ? 'digest' : (image.split('/').pop()?.split(':')[1] ?? '');
      if (tag === '' || tag === 'latest') cat(`image ${image} must pin a tag or digest (latest-tag)`);
      if (tag.includes('unset')) cat(`image ${image} keeps the base placeholder tag`);

      // Secrets as files only: no Secret in env, no password-like value in env.
      for (const e of c.env ?? []) {
        if (e.valueFrom?.secretKeyRef) cat(`env ${e.name} comes from a Secret (mount it as a file)`);
        if (/PASSWORD|SECRET|TOKEN|PRIVATE_KEY/i.test(e.name) && !/_FILE$/i.test(e.name))
          cat(`env ${e.name} looks like a secret value (env-var-secret)`);
      }
      for (const from of c.envFrom ?? []) if (from.secretRef) cat('envFrom a Secret (mount it as a file)');
      const names = (c.env ?? []).map((e: { name: string }) => e.name);
      const dup = names.find((n: string, i: number) => names.indexOf(n) !== i);
      if (dup) cat(`duplicate env ${dup} (duplicate-env-var)`);
      const env = containerEnv(objects, c);
      for (const [name, value] of Object.entries(env)) {
        if (
          name.endsWith('_FILE') &&
          !(c.volumeMounts ?? []).some((m: { mountPath: string }) => value.startsWith(`${m.mountPath}/`))
        ) {
          cat(`${name}=${value} is not inside a mounted volume`);
        }
      }

      const ports: { name?: string; containerPort: number }[] = c.ports ?? [];
      for (const p of ports) {
        if (p.name !== undefined && !PORT_NAME.test(p.name))
          cat(`port name ${p.name} is not an IANA service name (invalid-target-ports)`);
        if (p.containerPort === 22) cat('exposes port 22 (ssh-port)');
      }
      // A probe must reach a port the container exposes (kube-linter's liveness-port, readiness-port, startup-port).
      const probeChecks = {
        livenessProbe: 'liveness-port',
        readinessProbe: 'readiness-port',
        startupProbe: 'startup-port',
      };
      for (const [probe, check] of Object.entries(probeChecks)) {
        const port = probePort(c[probe]);
        if (port !== undefined && !ports.some((p) => p.containerPort === port || p.name === port))
          cat(`${probe} targets port ${port}, which the container does not expose (${check})`);
      }
      // Probes: native gRPC against the health-only port, never the mTLS port.
      const health = ports.find((p) => p.name === 'health');
      if (podSpecOf(w).containers.includes(c)) {
        if (!health) cat('has no port named health');
        for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
          const p = c[probe];
          if (!p) {
            if (probe !== 'startupProbe')
              cat(`${probe} missing (no-${probe === 'livenessProbe' ? 'liveness' : 'readiness'}-probe)`);
          } else if (p.grpc?.port === undefined) cat(`${probe} must be a native grpc probe`);
          else if (health && p.grpc.port !== health.containerPort)
            cat(`${probe} must target the health port ${health.containerPort}`);
        }
        if (c.securityContext?.readOnlyRootFilesystem === true) {
          const tmp = (c.volumeMounts ?? []).find((m: { mountPath: string }) => m.mountPath === '/tmp');
          const tmpVolume = tmp && volumes.find((v) => v.name === tmp.name);
          if (!tmpVolume || !('emptyDir' in tmpVolume)) cat('/tmp must be an emptyDir mount');
        }
        const drain = Number(env.SEALPOST_DRAIN_SECONDS ?? '20');
        const grace = pod.terminationGracePeriodSeconds ?? 30;
        if (grace < drain + DRAIN_MARGIN_SECONDS) {
          at(`terminationGracePeriodSeconds ${grace} < SEALPOST_DRAIN_SECONDS ${drain} + ${DRAIN_MARGIN_SECONDS}`);
        }
      }
      for (const m of c.volumeMounts ?? []) {
        if (!volumes.some((v) => v.name === m.name)) cat(`mounts unknown volume ${m.name}`);
      }
    }
  }
  return out;
}

/** NetworkPolicy coverage: a default deny for both directions, and a policy of its own for every workload. */
export function networkPolicyFindings(objects: readonly K8sObject[]): string[] {
  const out: string[] = [];
  const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
  const denyAll = policies.find(
    (p) =>
      isEmptySelector(p.spec?.podSelector) &&
      ['Ingress', 'Egress'].every((t) => (p.spec?.policyTypes ?? []).includes(t)) &&
      (p.spec?.ingress ?? []).length === 0 &&
      (p.spec?.egress ?? []).length === 0,
  );
  if (!denyAll) out.push('namespace: no default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rules)');
  for (const p of policies) {
    if (!workloads(objects).some((w) => selectorMatches(p.spec?.podSelector, podLabelsOf(w))))
      out.push(`${id(p)}: selects no workload (dangling-networkpolicy)`);
  }
  for (const w of workloads(objects)) {
    const labels = podLabelsOf(w);
    const own = policies.filter(
      (p) => !isEmptySelector(p.spec?.podSelector) && selectorMatches(p.spec.podSelector, labels),
    );
    // "Own": a policy whose podSelector is this service (matchLabels name), not only the shared ones.
    const named = own.filter((p) => p.spec.podSelector.matchLabels?.['app.kubernetes.io/name'] === serviceNameOf(w));
    if (named.length === 0) out.push(`${id(w)}: no NetworkPolicy selects it by name (non-isolated-pod)`);
    if (
      !own.some((p) =>
        (p.spec?.egress ?? []).some((r: { ports?: { port: number }[] }) => (r.ports ?? []).some((x) => x.port === 53)),
      )
    ) {
      out.push(`${id(w)}: no egress to DNS`);
    }
  }
  return out;
}

/** Cross-object checks: selectors, services, PDBs, HPAs, workload identity (kube-linter defaults). */
export function consistencyFindings(objects: readonly K8sObject[]): string[] {
  const out: string[] = [];
  const deployments = objects.filter((o) => o.kind === 'Deployment');
  const hpas = objects.filter((o) => o.kind === 'HorizontalPodAutoscaler');
  const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget');

  for (const d of deployments) {
    const labels = podLabelsOf(d);
    const service = serviceNameOf(d);
    if (!selectorMatches(d.spec?.selector, labels))
      out.push(`${id(d)}: selector does not match the pod labels (mismatching-selector)`);
    const replicas = d.spec?.replicas ?? 1;
    const hpa = hpas.find(
      (h) => h.spec?.scaleTargetRef?.kind === 'Deployment' && h.spec.scaleTargetRef.name === d.metadata.name,
    );
    const pdb = pdbs.filter((p) => selectorMatches(p.spec?.selector, labels));
    if (pdb.length !== 1) out.push(`${id(d)}: ${pdb.length} PodDisruptionBudgets select it (want exactly 1)`);
    if (SINGLE_WRITERS.includes(service)) {
      if (replicas !== 1) out.push(`${id(d)}: the single leased writer must run 1 replica`);
      if (hpa) out.push(`${id(d)}: the single leased writer must not be autoscaled`);
      for (const p of pdb) {
        if (!(Number(p.spec?.maxUnavailable) >= 1))
          out.push(`${id(p)}: the writer's PDB must allow eviction (maxUnavailable >= 1)`);
      }
    } else {
      if (!hpa) out.push(`${id(d)}: no HorizontalPodAutoscaler`);
      else if (replicas > hpa.spec.maxReplicas || replicas < hpa.spec.minReplicas)
        out.push(`${id(d)}: replicas outside the HPA range`);
      if (replicas > 1 && !podSpecOf(d)?.affinity?.podAntiAffinity)
        out.push(`${id(d)}: ${replicas} replicas without podAntiAffinity (no-anti-affinity)`);
    }
    for (const p of pdb) {
      // A PDB that can never be satisfied blocks every drain.
      if (p.spec?.maxUnavailable !== undefined && podCount(p.spec.maxUnavailable, replicas) === 0)
        out.push(`${id(p)}: maxUnavailable 0 blocks drains (pdb-max-unavailable)`);
      if (p.spec?.minAvailable !== undefined && podCount(p.spec.minAvailable, replicas) >= replicas)
        out.push(`${id(p)}: minAvailable >= replicas blocks drains (pdb-min-available)`);
      if (p.spec?.unhealthyPodEvictionPolicy !== 'AlwaysAllow')
        out.push(`${id(p)}: unhealthyPodEvictionPolicy should be AlwaysAllow (pdb-unhealthy-pod-eviction-policy)`);
    }
    if (AWS_SERVICES.includes(service)) {
      const sa = objects.find(
        (o) => o.kind === 'ServiceAccount' && o.metadata.name === podSpecOf(d)?.serviceAccountName,
      );
      const arn = sa?.metadata.annotations?.['eks.amazonaws.com/role-arn'] ?? '';
      if (!/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/.test(arn))
        out.push(`${id(d)}: needs AWS, but its ServiceAccount has no IRSA role-arn annotation`);
    }
  }
  for (const h of hpas) {
    const ref = h.spec?.scaleTargetRef;
    if (!deployments.some((d) => ref?.kind === 'Deployment' && d.metadata.name === ref.name))
      out.push(`${id(h)}: scales a Deployment that is not rendered (dangling-horizontalpodautoscaler)`);
  }
  for (const p of pdbs) {
    if (!deployments.some((d) => selectorMatches(p.spec?.selector, podLabelsOf(d))))
      out.push(`${id(p)}: selects no workload`);
  }
  for (const s of objects.filter((o) => o.kind === 'Service')) {
    const target = deployments.find((d) => selectorMatches({ matchLabels: s.spec?.selector }, podLabelsOf(d)));
    if (!target) {
      out.push(`${id(s)}: selects no pods (dangling-service)`);
      continue;
    }
    const containerPorts = (podSpecOf(target).containers ?? []).flatMap((c: { ports?: unknown[] }) => c.ports ?? []);
    for (const p of s.spec.ports ?? []) {
      if (p.port === 22 || p.targetPort === 22) out.push(`${id(s)}: exposes port 22 (ssh-port)`);
      if (typeof p.targetPort === 'string' && !PORT_NAME.test(p.targetPort))
        out.push(`${id(s)}: targetPort ${p.targetPort} is not an IANA service name (invalid-target-ports)`);
      const ok = containerPorts.some(
        (c: { name?: string; containerPort: number }) => c.name === p.targetPort || c.containerPort === p.targetPort,
      );
      if (!ok) out.push(`${id(s)}: targetPort ${p.targetPort} is no container port (invalid-target-ports)`);
    }
  }
  for (const o of objects) {
    if (/^extensions\/v1beta/.test(o.apiVersion)) out.push(`${id(o)}: uses ${o.apiVersion} (no-extensions-v1beta)`);
    if (o.kind !== 'Namespace' && o.kind !== 'ClusterRole' && !o.metadata.namespace)
      out.push(`${id(o)}: has no namespace (use-namespace)`);
    if (o.metadata.namespace === 'default') out.push(`${id(o)}: is in the default namespace`);
  }
  return out;
}

/** All rules at once. */
export function allFindings(objects: readonly K8sObject[]): string[] {
  return [...securityFindings(objects), ...networkPolicyFindings(objects), ...consistencyFindings(objects)];
}
