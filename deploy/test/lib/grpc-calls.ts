/**
 * Which Sealpost service calls which over gRPC, read from the access table (@sealpost/access): a method rule
 * naming services is exactly the list of services that may call that method. Deployment checks derive the
 * NetworkPolicy flows and the peer addresses a stack must provide from it, so they follow the code.
 */
import { DEFAULT_METHOD_RULES } from '@sealpost/access';
import { SERVICE_ENV_TOKEN, isServiceName, type ServiceName } from '@sealpost/config';

export interface GrpcCall {
  readonly caller: ServiceName;
  readonly callee: ServiceName;
}

/** The service whose gRPC API a method path belongs to: `/sealpost.vault.v1.ContactVault/X` → contact-vault. */
export function serviceOfMethod(method: string): ServiceName | undefined {
  const token = /^\/sealpost\.([a-z]+)\.v\d+\./.exec(method)?.[1]?.toUpperCase();
  return (Object.keys(SERVICE_ENV_TOKEN) as ServiceName[]).find((s) => SERVICE_ENV_TOKEN[s] === token);
}

/** caller → callee for every method rule that names service callers (the access table's service grants). */
export function grpcCallsOfAccessTable(): GrpcCall[] {
  const calls = new Map<string, GrpcCall>();
  for (const [method, rule] of Object.entries(DEFAULT_METHOD_RULES)) {
    const callee = serviceOfMethod(method);
    if (!callee) continue;
    for (const caller of rule.services) {
      if (isServiceName(caller)) calls.set(`${caller}>${callee}`, { caller, callee });
    }
  }
  return [...calls.values()];
}

/** Services whose gRPC API is in the access table (a service without one has no callers to check yet). */
export function servicesWithApi(): Set<ServiceName> {
  const out = new Set<ServiceName>();
  for (const method of Object.keys(DEFAULT_METHOD_RULES)) {
    const service = serviceOfMethod(method);
    if (service) out.add(service);
  }
  return out;
}
