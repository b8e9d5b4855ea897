import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { HEALTH_PORT_OFFSET, SERVICE_GRPC_PORT, SERVICE_NAMES, loadConfig, isServiceName } from '@sealpost/config';
import { grpcCallsOfAccessTable } from './lib/grpc-calls';
import {
  KUBE_LINTER_DEFAULT_CHECKS,
  KUBE_LINTER_EXTRA_CHECKS,
  allFindings,
  consistencyFindings,
  containerEnv,
  networkPolicyFindings,
  podSpecOf,
  securityFindings,
  workloads,
} from './lib/k8s-rules';
import { flowAllowed, grpcFlowFindings, podsOf, type PodInfo } from './lib/network-flows';
import { REPO_ROOT, describeWithKustomize, parseYamlDocuments, render, type K8sObject } from './lib/render';

const OVERLAYS = ['overlays/dev', 'overlays/prod'] as const;

function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`${kind}/${name} not rendered`);
  return o;
}

describeWithKustomize('rendered overlays', () => {
  it.each(OVERLAYS)('%s renders the two services, each with its own objects', (overlay) => {
    const objects = render(overlay);
    for (const service of ['contact-vault', 'audit']) {
      expect(find(objects, 'Deployment', service).spec.template.spec.serviceAccountName).toBe(service);
      find(objects, 'ServiceAccount', service);
      find(objects, 'Service', `sealpost-${service}`);
      find(objects, 'PodDisruptionBudget', service);
      find(objects, 'NetworkPolicy', service);
    }
    find(objects, 'HorizontalPodAutoscaler', 'contact-vault');
    expect(objects.some((o) => o.kind === 'HorizontalPodAutoscaler' && o.metadata.name === 'audit')).toBe(false);
  });

  it.each(OVERLAYS)('%s passes every security, NetworkPolicy and kube-linter-equivalent rule', (overlay) => {
    expect(allFindings(render(overlay))).toEqual([]);
  });

  it('the namespace enforces the restricted Pod Security Standard', () => {
    for (const overlay of OVERLAYS) {
      const ns = render(overlay).find((o) => o.kind === 'Namespace');
      expect(ns?.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
    }
  });

  it('each environment has its own trust domain, and none is the dev one', () => {
    const domains = OVERLAYS.map((overlay) => {
      const cm = render(overlay).find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('sealpost-common'));
      return cm?.data?.SEALPOST_TRUST_DOMAIN as string;
    });
    expect(new Set(domains).size).toBe(OVERLAYS.length);
    for (const d of domains) expect(d).not.toMatch(/sealpost\.dev$|REPLACE/);
  });

  // The env a container gets from the manifests is a valid production configuration: every SEALPOST_*
  // name is a setting, and nothing production refuses is left (dev CA, embedded bus, http KMS, …).
  it.each(OVERLAYS)('%s: every container env loads with @sealpost/config in production mode', (overlay) => {
    const objects = render(overlay);
    for (const w of workloads(objects)) {
      for (const c of podSpecOf(w).containers) {
        const env = containerEnv(objects, c);
        const service = env.SEALPOST_SERVICE ?? '';
        expect(isServiceName(service)).toBe(true);
        if (!isServiceName(service)) continue;
        const config = loadConfig(service, env);
        expect(config.mode).toBe('production');
        expect(config.bus.kind).toBe('nats');
        expect(config.store.kind).toBe('mongo');
        expect(config.kms.kind).toBe('aws');
        // Probes and Service ports agree with the ports the service binds.
        const ports = Object.fromEntries(
          c.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]),
        );
        expect(config.grpc.listen).toBe(`0.0.0.0:${ports.grpc}`);
        expect(config.grpc.health).toBe(`0.0.0.0:${ports.health}`);
        // Callers dial sealpost-<service>:<port>: the Service of that name must expose it.
        const svc = find(objects, 'Service', `sealpost-${service}`);
        expect(svc.spec.ports.find((p: { name: string }) => p.name === 'grpc').port).toBe(ports.grpc);
        // Secrets are files on a mounted Secret volume, never values.
        expect(config.bus.kind === 'nats' && config.bus.passwordFile).toMatch(/^\/var\/run\/sealpost\/secrets\//);
        expect(config.store.kind === 'mongo' && config.store.passwordFile).toMatch(/^\/var\/run\/sealpost\/secrets\//);
      }
    }
  });
});

// Each rule must be able to fail: mutate one setting of the rendered prod overlay and expect the named finding.
describeWithKustomize('rules refuse a workload missing a setting', () => {
  const vault = (objects: K8sObject[]) => find(objects, 'Deployment', 'contact-vault');
  const server = (objects: K8sObject[]) => vault(objects).spec.template.spec.containers[0];
  const cases: [string, (o: K8sObject[]) => void, string][] = [
    [
      'runAsNonRoot removed',
      (o) => {
        delete vault(o).spec.template.spec.securityContext.runAsNonRoot;
        delete server(o).securityContext.runAsNonRoot;
      },
      'Deployment/contact-vault: pod securityContext.runAsNonRoot must be true',
    ],
    ['root user', (o) => (vault(o).spec.template.spec.securityContext.runAsUser = 0), 'runAsUser must be >= 10000'],
    [
      'writable root fs',
      (o) => (server(o).securityContext.readOnlyRootFilesystem = false),
      'container server: readOnlyRootFilesystem must be true',
    ],
    [
      'privilege escalation',
      (o) => delete server(o).securityContext.allowPrivilegeEscalation,
      'allowPrivilegeEscalation must be false',
    ],
    [
      'capabilities kept',
      (o) => (server(o).securityContext.capabilities.drop = ['NET_RAW']),
      'capabilities.drop must include ALL',
    ],
    [
      'capability added',
      (o) => (server(o).securityContext.capabilities.add = ['NET_ADMIN']),
      'must not add capabilities',
    ],
    [
      'seccomp unconfined',
      (o) => {
        vault(o).spec.template.spec.securityContext.seccompProfile.type = 'Unconfined';
        server(o).securityContext.seccompProfile.type = 'Unconfined';
      },
      'seccompProfile must be RuntimeDefault',
    ],
    ['privileged', (o) => (server(o).securityContext.privileged = true), 'must not be privileged'],
    [
      'token automounted',
      (o) => delete vault(o).spec.template.spec.automountServiceAccountToken,
      'automountServiceAccountToken must be false',
    ],
    [
      'service links on',
      (o) => delete vault(o).spec.template.spec.enableServiceLinks,
      'enableServiceLinks must be false',
    ],
    ['host network', (o) => (vault(o).spec.template.spec.hostNetwork = true), 'uses a host namespace'],
    [
      'hostPath volume',
      (o) => vault(o).spec.template.spec.volumes.push({ name: 'h', hostPath: { path: '/' } }),
      'volume h is a hostPath',
    ],
    [
      'no spiffe volume',
      (o) => {
        const spec = vault(o).spec.template.spec;
        spec.volumes = spec.volumes.filter((v: { name: string }) => v.name !== 'spiffe');
      },
      'has no spiffe.csi.cert-manager.io volume',
    ],
    ['no memory limit', (o) => delete server(o).resources.limits.memory, 'resources.limits.memory missing'],
    ['no cpu request', (o) => delete server(o).resources.requests.cpu, 'resources.requests.cpu missing'],
    ['no readiness probe', (o) => delete server(o).readinessProbe, 'readinessProbe missing'],
    [
      'exec liveness probe',
      (o) => (server(o).livenessProbe = { exec: { command: ['true'] } }),
      'livenessProbe must be a native grpc probe',
    ],
    [
      'probe on the mTLS port',
      (o) => (server(o).readinessProbe.grpc.port = 7401),
      'readinessProbe must target the health port 7501',
    ],
    ['latest tag', (o) => (server(o).image = 'sealpost/contact-vault:latest'), 'must pin a tag or digest (latest-tag)'],
    ['untagged image', (o) => (server(o).image = 'sealpost/contact-vault'), 'must pin a tag or digest'],
    [
      'secret in env',
      (o) => server(o).env.push({ name: 'X', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }),
      'env X comes from a Secret',
    ],
    [
      'password value in env',
      (o) => server(o).env.push({ name: 'SEALPOST_NATS_PASSWORD', value: 'x' }),
      'env SEALPOST_NATS_PASSWORD looks like a secret value',
    ],
    [
      'secret file outside mounts',
      (o) => {
        server(o).env.find((e: { name: string }) => e.name === 'SEALPOST_NATS_PASSWORD_FILE').value =
          '/etc/nats-password';
      },
      'SEALPOST_NATS_PASSWORD_FILE=/etc/nats-password is not inside a mounted volume',
    ],
    [
      'short grace period',
      (o) => (vault(o).spec.template.spec.terminationGracePeriodSeconds = 10),
      'terminationGracePeriodSeconds 10 < SEALPOST_DRAIN_SECONDS 20',
    ],
    [
      '/tmp not emptyDir',
      (o) => {
        server(o).volumeMounts = server(o).volumeMounts.filter((m: { mountPath: string }) => m.mountPath !== '/tmp');
      },
      '/tmp must be an emptyDir mount',
    ],
    [
      'default service account',
      (o) => (vault(o).spec.template.spec.serviceAccountName = 'default'),
      'needs its own serviceAccountName',
    ],
  ];

  it.each(cases)('%s', (_title, mutate, expected) => {
    const objects = render('overlays/prod');
    expect(securityFindings(objects)).toEqual([]);
    mutate(objects);
    const findings = securityFindings(objects);
    expect(findings.join('\n')).toContain(expected);
  });

  const crossCases: [string, (o: K8sObject[]) => void, string][] = [
    [
      'Deployment without its NetworkPolicy',
      (o) => o.splice(o.indexOf(find(o, 'NetworkPolicy', 'contact-vault')), 1),
      'Deployment/contact-vault: no NetworkPolicy selects it by name (non-isolated-pod)',
    ],
    [
      'no default deny',
      (o) => o.splice(o.indexOf(find(o, 'NetworkPolicy', 'default-deny')), 1),
      'no default-deny NetworkPolicy',
    ],
    [
      'default deny with an allow rule',
      (o) => (find(o, 'NetworkPolicy', 'default-deny').spec.ingress = [{}]),
      'no default-deny NetworkPolicy',
    ],
    [
      'no DNS egress',
      (o) => o.splice(o.indexOf(find(o, 'NetworkPolicy', 'sealpost-common-egress')), 1),
      'Deployment/audit: no egress to DNS',
    ],
    [
      'audit writer autoscaled',
      (o) => {
        const hpa = structuredClone(find(o, 'HorizontalPodAutoscaler', 'contact-vault'));
        hpa.metadata.name = 'audit';
        hpa.spec.scaleTargetRef.name = 'audit';
        hpa.spec.minReplicas = 1;
        o.push(hpa);
      },
      'Deployment/audit: the single leased writer must not be autoscaled',
    ],
    ['audit writer scaled out', (o) => (find(o, 'Deployment', 'audit').spec.replicas = 2), 'must run 1 replica'],
    [
      'writer PDB blocks drains',
      (o) => {
        const spec = find(o, 'PodDisruptionBudget', 'audit').spec;
        delete spec.maxUnavailable;
        spec.minAvailable = 1;
      },
      "PodDisruptionBudget/audit: the writer's PDB must allow eviction",
    ],
    [
      'PDB maxUnavailable 0',
      (o) => (find(o, 'PodDisruptionBudget', 'contact-vault').spec.maxUnavailable = 0),
      'maxUnavailable 0 blocks drains',
    ],
    [
      'vault without HPA',
      (o) => o.splice(o.indexOf(find(o, 'HorizontalPodAutoscaler', 'contact-vault')), 1),
      'Deployment/contact-vault: no HorizontalPodAutoscaler',
    ],
    [
      'vault without PDB',
      (o) => o.splice(o.indexOf(find(o, 'PodDisruptionBudget', 'contact-vault')), 1),
      '0 PodDisruptionBudgets select it',
    ],
    [
      'no IRSA annotation',
      (o) => delete find(o, 'ServiceAccount', 'audit').metadata.annotations?.['eks.amazonaws.com/role-arn'],
      'Deployment/audit: needs AWS',
    ],
    [
      'dangling Service',
      (o) => (find(o, 'Service', 'sealpost-audit').spec.selector = { 'app.kubernetes.io/name': 'audit-typo' }),
      'dangling-service',
    ],
    [
      'bad targetPort',
      (o) => (find(o, 'Service', 'sealpost-audit').spec.ports[0].targetPort = 'grcp'),
      'targetPort grcp is no container port',
    ],
    [
      'mismatching selector',
      (o) => (find(o, 'Deployment', 'audit').spec.selector.matchLabels['app.kubernetes.io/name'] = 'x'),
      'mismatching-selector',
    ],
    [
      'no anti-affinity',
      (o) => delete find(o, 'Deployment', 'contact-vault').spec.template.spec.affinity,
      'no-anti-affinity',
    ],
  ];

  it.each(crossCases)('%s', (_title, mutate, expected) => {
    const objects = render('overlays/prod');
    mutate(objects);
    expect([...networkPolicyFindings(objects), ...consistencyFindings(objects)].join('\n')).toContain(expected);
  });
});

// kube-linter is not served here (see lib/k8s-rules.ts): each of its default checks, and the extra ones
// k8s/.kube-linter.yaml includes, must be able to fail. One bad manifest per check; the finding names the check.
describeWithKustomize('kube-linter checks (reimplemented) refuse a bad manifest', () => {
  const vault = (o: K8sObject[]) => find(o, 'Deployment', 'contact-vault');
  const pod = (o: K8sObject[]) => vault(o).spec.template.spec;
  const server = (o: K8sObject[]) => pod(o).containers[0];
  const vaultPdb = (o: K8sObject[]) => find(o, 'PodDisruptionBudget', 'contact-vault').spec;
  const cases: Record<string, (o: K8sObject[]) => void> = {
    'dangling-service': (o) => (find(o, 'Service', 'sealpost-audit').spec.selector = { 'app.kubernetes.io/name': 'x' }),
    'deprecated-service-account-field': (o) => (pod(o).serviceAccount = 'contact-vault'),
    'docker-sock': (o) => pod(o).volumes.push({ name: 'd', hostPath: { path: '/var/run/docker.sock' } }),
    'drop-net-raw-capability': (o) => (server(o).securityContext.capabilities.drop = ['CHOWN']),
    'duplicate-env-var': (o) => server(o).env.push({ ...server(o).env[0] }),
    'env-var-secret': (o) => server(o).env.push({ name: 'API_Secret', value: 'x' }),
    'host-ipc': (o) => (pod(o).hostIPC = true),
    'host-network': (o) => (pod(o).hostNetwork = true),
    'host-pid': (o) => (pod(o).hostPID = true),
    'invalid-target-ports': (o) => (server(o).ports[0].name = 'grpc_main'),
    'latest-tag': (o) => (server(o).image = 'sealpost/contact-vault:latest'),
    'liveness-port': (o) => (server(o).livenessProbe.grpc.port = 7999),
    'mismatching-selector': (o) => (vault(o).spec.selector.matchLabels['app.kubernetes.io/name'] = 'x'),
    'no-anti-affinity': (o) => delete pod(o).affinity,
    'no-extensions-v1beta': (o) =>
      o.push({
        apiVersion: 'extensions/v1beta1',
        kind: 'Ingress',
        metadata: { name: 'old', namespace: 'sealpost' },
        spec: {},
      }),
    'no-read-only-root-fs': (o) => (server(o).securityContext.readOnlyRootFilesystem = false),
    'non-existent-service-account': (o) => (pod(o).serviceAccountName = 'ghost'),
    'pdb-max-unavailable': (o) => (vaultPdb(o).maxUnavailable = '0%'),
    'pdb-min-available': (o) => {
      delete vaultPdb(o).maxUnavailable;
      vaultPdb(o).minAvailable = '100%';
    },
    'pdb-unhealthy-pod-eviction-policy': (o) => delete vaultPdb(o).unhealthyPodEvictionPolicy,
    'privilege-escalation-container': (o) => (server(o).securityContext.allowPrivilegeEscalation = true),
    'privileged-container': (o) => (server(o).securityContext.privileged = true),
    'readiness-port': (o) => (server(o).readinessProbe.grpc.port = 7999),
    'run-as-non-root': (o) => {
      delete pod(o).securityContext.runAsNonRoot;
      delete server(o).securityContext.runAsNonRoot;
    },
    'sensitive-host-mounts': (o) => pod(o).volumes.push({ name: 'etc', hostPath: { path: '/etc/' } }),
    'ssh-port': (o) => server(o).ports.push({ name: 'ssh', containerPort: 22 }),
    'startup-port': (o) => (server(o).startupProbe.grpc.port = 7999),
    'unsafe-sysctls': (o) => (pod(o).securityContext.sysctls = [{ name: 'net.core.somaxconn', value: '1024' }]),
    'unset-cpu-requirements': (o) => delete server(o).resources.requests.cpu,
    'unset-memory-requirements': (o) => delete server(o).resources.limits.memory,
    // Off by default in kube-linter, enforced here and included by k8s/.kube-linter.yaml.
    'dangling-horizontalpodautoscaler': (o) =>
      (find(o, 'HorizontalPodAutoscaler', 'contact-vault').spec.scaleTargetRef.name = 'ghost'),
    'dangling-networkpolicy': (o) =>
      (find(o, 'NetworkPolicy', 'audit').spec.podSelector.matchLabels['app.kubernetes.io/name'] = 'audit-typo'),
    'default-service-account': (o) => (pod(o).serviceAccountName = 'default'),
    'no-liveness-probe': (o) => delete server(o).livenessProbe,
    'no-readiness-probe': (o) => delete server(o).readinessProbe,
    'non-isolated-pod': (o) => o.splice(o.indexOf(find(o, 'NetworkPolicy', 'contact-vault')), 1),
    'use-namespace': (o) => delete find(o, 'ServiceAccount', 'audit').metadata.namespace,
  };

  it('covers every kube-linter default check, and the extra ones the config includes', () => {
    expect(Object.keys(cases).sort()).toEqual([...KUBE_LINTER_DEFAULT_CHECKS, ...KUBE_LINTER_EXTRA_CHECKS].sort());
  });

  it('k8s/.kube-linter.yaml includes exactly the extra checks and excludes none', () => {
    const config = parseYamlDocuments(readFileSync(join(REPO_ROOT, 'k8s/.kube-linter.yaml'), 'utf8'))[0] as {
      checks: { include?: string[]; exclude?: string[]; addAllBuiltIn?: boolean; doNotAutoAddDefaults?: boolean };
    };
    expect([...(config.checks.include ?? [])].sort()).toEqual([...KUBE_LINTER_EXTRA_CHECKS].sort());
    expect(config.checks.exclude ?? []).toEqual([]);
    expect(config.checks.doNotAutoAddDefaults ?? false).toBe(false);
    expect(config.checks.addAllBuiltIn ?? false).toBe(false);
  });

  it.each(Object.entries(cases))('%s', (check, mutate) => {
    const objects = render('overlays/prod');
    expect(allFindings(objects).filter((f) => f.includes(`(${check})`))).toEqual([]);
    mutate(objects);
    expect(allFindings(objects).join('\n')).toContain(`(${check})`);
  });
});

// Service-to-service gRPC flows follow the access table: its service grants are the calls, and the
// NetworkPolicies must admit exactly those (both ends), with the caller dialling the callee's Service.
describeWithKustomize('gRPC flows between services', () => {
  const calls = grpcCallsOfAccessTable();
  const pods = (o: K8sObject[]) => Object.fromEntries(podsOf(o).map((p) => [p.service, p]));

  it('the access table has the vault call audit (tree heads and inclusion proofs for erasure receipts)', () => {
    expect(calls).toContainEqual({ caller: 'contact-vault', callee: 'audit' });
  });

  it.each(OVERLAYS)('%s: the policies admit exactly the calls of the access table', (overlay) => {
    const objects = render(overlay);
    expect(grpcFlowFindings(objects)).toEqual([]);
    const p = pods(objects);
    expect(flowAllowed(objects, p['contact-vault']!, p.audit!, 7404)).toEqual({ egress: true, ingress: true });
    expect(flowAllowed(objects, p.audit!, p['contact-vault']!, 7401)).toEqual({ egress: false, ingress: false });
    expect(flowAllowed(objects, p['contact-vault']!, p.audit!, 7504)).toEqual({ egress: false, ingress: false });
  });

  it.each(OVERLAYS)("%s: each caller's configuration dials the callee's Service on its gRPC port", (overlay) => {
    const objects = render(overlay);
    const deployed = podsOf(objects).map((p) => p.service);
    const between = calls.filter((c) => deployed.includes(c.caller) && deployed.includes(c.callee));
    expect(between.length).toBeGreaterThan(0);
    for (const { caller, callee } of between) {
      const env = containerEnv(objects, podSpecOf(find(objects, 'Deployment', caller)).containers[0]);
      const config = loadConfig(caller, env);
      const port = SERVICE_GRPC_PORT[callee];
      expect(config.grpc.peers[callee]).toBe(`sealpost-${callee}:${port}`);
      const svc = find(objects, 'Service', `sealpost-${callee}`);
      expect(svc.spec.ports).toContainEqual(expect.objectContaining({ name: 'grpc', port }));
    }
  });

  // later/ holds the policies of services not deployed yet: with a pod for every service, the whole call graph
  // must already agree with the access table, so a service joins by moving its file, not by redesigning flows.
  it('with every service deployed (later/ policies included), the policies admit exactly the calls of the access table', () => {
    const dir = join(REPO_ROOT, 'k8s/components/network-policies/later');
    const later = readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .flatMap((f) => parseYamlDocuments(readFileSync(join(dir, f), 'utf8')) as K8sObject[])
      .map((o) => ({ ...o, metadata: { ...o.metadata, namespace: 'sealpost' } }));
    const everyPod: PodInfo[] = SERVICE_NAMES.map((service) => ({
      service,
      namespace: 'sealpost',
      labels: { 'app.kubernetes.io/name': service, 'app.kubernetes.io/part-of': 'sealpost' },
      ports: [
        { name: 'grpc', containerPort: SERVICE_GRPC_PORT[service] },
        { name: 'health', containerPort: SERVICE_GRPC_PORT[service] + HEALTH_PORT_OFFSET },
      ],
    }));
    expect(grpcFlowFindings([...render('overlays/prod'), ...later], everyPod)).toEqual([]);
  });

  const flowCases: [string, (o: K8sObject[]) => void, string][] = [
    [
      'the vault without egress to audit',
      (o) => (find(o, 'NetworkPolicy', 'contact-vault').spec.egress = []),
      'contact-vault → audit:7404: the access table lets contact-vault call it, but egress denies it',
    ],
    [
      'audit without ingress from the vault',
      (o) => find(o, 'NetworkPolicy', 'audit').spec.ingress[0].from.shift(),
      'contact-vault → audit:7404: the access table lets contact-vault call it, but ingress denies it',
    ],
    [
      'audit let into the vault',
      (o) => {
        find(o, 'NetworkPolicy', 'contact-vault').spec.ingress[0].from.push({
          podSelector: { matchLabels: { 'app.kubernetes.io/name': 'audit' } },
        });
        find(o, 'NetworkPolicy', 'sealpost-common-egress').spec.egress.push({ to: [{ podSelector: {} }] });
      },
      'audit → contact-vault:7401: allowed, but the access table gives audit no method of contact-vault',
    ],
    [
      'a health port opened to pods',
      (o) => {
        find(o, 'NetworkPolicy', 'contact-vault').spec.egress[0].ports.push({ protocol: 'TCP', port: 7504 });
        find(o, 'NetworkPolicy', 'sealpost-health-from-kubelet').spec.ingress[0].from.push({ podSelector: {} });
      },
      'contact-vault → audit:7504: health port reachable',
    ],
  ];

  it.each(flowCases)('refuses %s', (_title, mutate, expected) => {
    const objects = render('overlays/prod');
    mutate(objects);
    expect(grpcFlowFindings(objects).join('\n')).toContain(expected);
  });
});
