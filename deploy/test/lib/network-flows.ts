/**
 * NetworkPolicy semantics, evaluated offline over rendered objects: may a pod of service A open a TCP connection
 * to a pod of service B on a port? Both ends count, as in Kubernetes: A's egress (if any Egress policy selects A)
 * and B's ingress (if any Ingress policy selects B). `ipBlock` peers never match a pod (pod addresses are not
 * pinned; those rules are for the kubelet, VPC endpoints and external issuers).
 * `grpcFlowFindings` checks that the policies admit the service-to-service calls of the access table
 * (./grpc-calls) and no other pod-to-pod gRPC or health traffic between Sealpost services.
 */
import { HEALTH_PORT_OFFSET, SERVICE_GRPC_PORT, isServiceName } from '@sealpost/config';
import { grpcCallsOfAccessTable, servicesWithApi } from './grpc-calls';
import { podSpecOf, selectorMatches, workloads } from './k8s-rules';
import type { K8sObject } from './render';

/** A pod as the policies see it: its service, namespace, labels and container ports. */
export interface PodInfo {
  readonly service: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ports: readonly { readonly name?: string; readonly containerPort: number }[];
}

/** One pod per rendered workload (labels of its template, ports of its containers). */
export function podsOf(objects: readonly K8sObject[]): PodInfo[] {
  return workloads(objects).map((w) => {
    const labels: Record<string, string> = w.spec?.template?.metadata?.labels ?? {};
    return {
      service: labels['app.kubernetes.io/name'] ?? w.metadata.name,
      namespace: w.metadata.namespace ?? 'default',
      labels,
      ports: (podSpecOf(w)?.containers ?? []).flatMap((c: { ports?: PodInfo['ports'] }) => c.ports ?? []),
    };
  });
}

/** Labels of a namespace: those rendered, plus the `kubernetes.io/metadata.name` the API server always sets. */
function namespaceLabels(objects: readonly K8sObject[], namespace: string): Record<string, string> {
  const ns = objects.find((o) => o.kind === 'Namespace' && o.metadata.name === namespace);
  return { ...(ns?.metadata.labels ?? {}), 'kubernetes.io/metadata.name': namespace };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- rendered NetworkPolicy peers and ports
type Rule = { from?: any[]; to?: any[]; ports?: any[] };

function peerMatches(
  objects: readonly K8sObject[],
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  peer: any,
  policyNamespace: string,
  pod: PodInfo,
): boolean {
  if (peer.ipBlock) return false;
  const namespaceOk = peer.namespaceSelector
    ? selectorMatches(peer.namespaceSelector, namespaceLabels(objects, pod.namespace))
    : pod.namespace === policyNamespace;
  const podOk = peer.podSelector ? selectorMatches(peer.podSelector, pod.labels) : true;
  return namespaceOk && podOk;
}

/** Whether a rule's ports admit TCP `port` on `destination` (named ports resolve against its containers). */
function portMatches(rule: Rule, port: number, destination: PodInfo): boolean {
  if (!rule.ports || rule.ports.length === 0) return true;
  return rule.ports.some((p) => {
    if ((p.protocol ?? 'TCP') !== 'TCP') return false;
    if (p.port === undefined) return true;
    const start = typeof p.port === 'number' ? p.port : destination.ports.find((c) => c.name === p.port)?.containerPort;
    if (start === undefined) return false;
    return p.endPort === undefined ? port === start : port >= start && port <= p.endPort;
  });
}

/** Whether one direction admits the connection: not isolated, or some rule of a selecting policy allows it. */
function directionAllows(
  objects: readonly K8sObject[],
  direction: 'Ingress' | 'Egress',
  self: PodInfo,
  other: PodInfo,
  port: number,
  destination: PodInfo,
): boolean {
  const selecting = objects.filter(
    (p) =>
      p.kind === 'NetworkPolicy' &&
      (p.metadata.namespace ?? 'default') === self.namespace &&
      selectorMatches(p.spec?.podSelector, self.labels) &&
      // Without policyTypes, a policy is Ingress, plus Egress when it has egress rules.
      (p.spec?.policyTypes ?? (p.spec?.egress ? ['Ingress', 'Egress'] : ['Ingress'])).includes(direction),
  );
  if (selecting.length === 0) return true;
  return selecting.some((p) =>
    ((direction === 'Ingress' ? p.spec?.ingress : p.spec?.egress) ?? []).some((rule: Rule) => {
      const peers = direction === 'Ingress' ? rule.from : rule.to;
      const peerOk =
        !peers || peers.length === 0 || peers.some((peer) => peerMatches(objects, peer, p.metadata.namespace!, other));
      return peerOk && portMatches(rule, port, destination);
    }),
  );
}

/** Whether the policies let `from` open a TCP connection to `to` on `port`, per end. */
export function flowAllowed(
  objects: readonly K8sObject[],
  from: PodInfo,
  to: PodInfo,
  port: number,
): { egress: boolean; ingress: boolean } {
  return {
    egress: directionAllows(objects, 'Egress', from, to, port, to),
    ingress: directionAllows(objects, 'Ingress', to, from, port, to),
  };
}

/**
 * Between the Sealpost pods given: every service-to-service gRPC call of the access table is admitted on the
 * callee's gRPC port at both ends; no other pod-to-pod call reaches the gRPC port of a service whose API is in the
 * access table; no Sealpost pod reaches another's health-only port (the kubelet's alone).
 */
export function grpcFlowFindings(objects: readonly K8sObject[], pods: readonly PodInfo[] = podsOf(objects)): string[] {
  const out: string[] = [];
  const calls = grpcCallsOfAccessTable();
  const withApi = servicesWithApi();
  for (const from of pods) {
    for (const to of pods) {
      if (from === to || !isServiceName(to.service)) continue;
      const grpcPort = SERVICE_GRPC_PORT[to.service];
      const needed = calls.some((c) => c.caller === from.service && c.callee === to.service);
      const allowed = flowAllowed(objects, from, to, grpcPort);
      const flow = `${from.service} → ${to.service}:${grpcPort}`;
      if (needed) {
        if (!allowed.egress) out.push(`${flow}: the access table lets ${from.service} call it, but egress denies it`);
        if (!allowed.ingress) out.push(`${flow}: the access table lets ${from.service} call it, but ingress denies it`);
      } else if (withApi.has(to.service) && allowed.egress && allowed.ingress) {
        out.push(`${flow}: allowed, but the access table gives ${from.service} no method of ${to.service}`);
      }
      const healthPort = grpcPort + HEALTH_PORT_OFFSET;
      const health = flowAllowed(objects, from, to, healthPort);
      if (health.egress && health.ingress)
        out.push(`${from.service} → ${to.service}:${healthPort}: health port reachable`);
    }
  }
  return out;
}
