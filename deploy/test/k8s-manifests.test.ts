import { loadConfig, isServiceName } from '@sealpost/config';
import {
  allFindings,
  consistencyFindings,
  containerEnv,
  networkPolicyFindings,
  podSpecOf,
  securityFindings,
  workloads,
} from './lib/k8s-rules';
import { describeWithKustomize, render, type K8sObject } from './lib/render';

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
