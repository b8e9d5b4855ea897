import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import type { RuntimeMode } from '@sealpost/access';
import { PROTO_ROOT } from '@sealpost/proto';
import { createMetricsInterceptor } from './metrics-interceptor';
import { HealthImplementation, protoPath as healthProtoPath, type ServingStatus } from 'grpc-health-check';
import { createHealthCredentials, createServerCredentials, type ServerTlsOptions } from './tls-credentials';

export interface GrpcServerOptions {
  /** Service name for errors and logs, e.g. `contact-vault`. */
  readonly service: string;
  /** In production a trust bundle holding the dev CA is refused. Default `production` (fail closed). */
  readonly mode?: RuntimeMode;
  /** Main listener, `host:port`; port 0 picks a free one. */
  readonly address: string;
  readonly tls: ServerTlsOptions;
  /**
   * Health-only listener for Kubernetes probes (which cannot present client certificates): serves
   * `grpc.health.v1.Health` and nothing else. Plaintext unless `tls` is given. Omit to run none.
   */
  readonly health?: { readonly address: string; readonly tls?: { cert: Buffer | string; key: Buffer | string } };
  /**
   * Server interceptors of the main listener, outermost first (put the access interceptor here). A metrics
   * interceptor always runs before them, so refused calls are counted with their status.
   */
  readonly interceptors?: readonly grpc.ServerInterceptor[];
  /** .proto files (relative to `includeDirs`, default PROTO_ROOT) described by server reflection. */
  readonly reflection?: { readonly protoFiles: readonly string[]; readonly includeDirs?: readonly string[] };
  readonly serverOptions?: grpc.ServerOptions;
}

/** The bound ports. */
export interface GrpcServerPorts {
  readonly port: number;
  readonly healthPort?: number;
}

/** Where a started server listens: the configured hosts with the ports actually bound (port 0 picks one). */
export function boundEndpoint(
  addresses: { readonly listen: string; readonly health: string },
  ports: GrpcServerPorts,
): { grpc: string; health: string } {
  const host = (address: string): string => address.slice(0, address.lastIndexOf(':'));
  return {
    grpc: `${host(addresses.listen)}:${ports.port}`,
    health: `${host(addresses.health)}:${ports.healthPort ?? ''}`,
  };
}

export interface GrpcServer {
  readonly grpcServer: grpc.Server;
  /** Registers a service; its full name gets a health status (NOT_SERVING until `start`). */
  addService(definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void;
  /** Binds both listeners and reports SERVING. Throws if a port cannot be bound. */
  start(): Promise<GrpcServerPorts>;
  /** Sets the health status of one service, or of the server (`''`) and every service when omitted. */
  setServing(status: Exclude<ServingStatus, 'UNKNOWN'>, serviceName?: string): void;
  /**
   * Graceful stop: health → NOT_SERVING, stop taking new calls, let in-flight calls finish, force-close whatever
   * is still running after `timeoutMs`. Resolves when both listeners are closed.
   */
  drain(timeoutMs: number): Promise<void>;
  /** Immediate stop of both listeners (in-flight calls are cancelled). */
  forceShutdown(): void;
}

function serviceNameOf(definition: grpc.ServiceDefinition): string {
  const first = Object.values(definition)[0];
  const m = first ? /^\/([^/]+)\//.exec(first.path) : null;
  if (!m?.[1]) throw new TypeError('a service definition must have at least one method');
  return m[1];
}

function bind(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (err, port) => (err ? reject(err) : resolve(port)));
  });
}

function loadReflection(reflection: NonNullable<GrpcServerOptions['reflection']>): protoLoader.PackageDefinition {
  const includeDirs = [
    ...(reflection.includeDirs ?? [PROTO_ROOT]),
    path.dirname(path.dirname(path.dirname(healthProtoPath))),
  ];
  return protoLoader.loadSync([...reflection.protoFiles, 'health/v1/health.proto'], {
    includeDirs,
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
}

/**
 * The gRPC server scaffold every service uses: (m)TLS main listener with interceptors, `grpc.health.v1`
 * with per-service status, server reflection, a separate health-only listener, and graceful drain.
 */
export async function createGrpcServer(options: GrpcServerOptions): Promise<GrpcServer> {
  const mode = options.mode ?? 'production';
  const { credentials, loaded } = await createServerCredentials(options.tls, mode);
  const health = new HealthImplementation({ '': 'NOT_SERVING' });
  const serviceNames = new Set<string>();

  const grpcServer = new grpc.Server({
    ...options.serverOptions,
    interceptors: [createMetricsInterceptor(), ...(options.interceptors ?? [])],
  });
  health.addToServer(grpcServer);
  if (options.reflection) {
    new ReflectionService(loadReflection(options.reflection)).addToServer(grpcServer);
  }
  // The probe listener shares the status map, but has no interceptors and no other service on it.
  const healthServer = options.health ? new grpc.Server() : undefined;
  if (healthServer) health.addToServer(healthServer);

  const setServing = (status: Exclude<ServingStatus, 'UNKNOWN'>, serviceName?: string): void => {
    if (serviceName !== undefined) {
      health.setStatus(serviceName, status);
      return;
    }
    health.setStatus('', status);
    for (const name of serviceNames) health.setStatus(name, status);
  };

  const shutdown = (server: grpc.Server, timeoutMs: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => server.forceShutdown(), timeoutMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });

  let draining: Promise<void> | undefined;

  return {
    grpcServer,
    addService(definition, implementation) {
      const name = serviceNameOf(definition);
      grpcServer.addService(definition, implementation);
      serviceNames.add(name);
      health.setStatus(name, 'NOT_SERVING');
    },
    async start() {
      const port = await bind(grpcServer, options.address, credentials);
      // Certificate providers deliver their material asynchronously; let it land before reporting SERVING.
      await loaded();
      await new Promise((resolve) => setImmediate(resolve));
      let healthPort: number | undefined;
      if (healthServer && options.health) {
        healthPort = await bind(healthServer, options.health.address, createHealthCredentials(options.health.tls));
      }
      setServing('SERVING');
      return healthPort === undefined ? { port } : { port, healthPort };
    },
    setServing,
    drain(timeoutMs) {
      draining ??= (async () => {
        setServing('NOT_SERVING');
        await shutdown(grpcServer, timeoutMs);
        // The probe listener goes last so the kubelet sees NOT_SERVING for as long as the drain runs.
        if (healthServer) await shutdown(healthServer, 1000);
      })();
      return draining;
    },
    forceShutdown() {
      setServing('NOT_SERVING');
      grpcServer.forceShutdown();
      healthServer?.forceShutdown();
    },
  };
}

/**
 * Drains the servers on SIGTERM/SIGINT (once), then calls `onDrained` (typically `process.exit`).
 * Returns a function that removes the handlers.
 */
export function drainOnSignals(
  servers: readonly GrpcServer[],
  options: { timeoutMs: number; onDrained?: () => void; signals?: readonly NodeJS.Signals[] },
): () => void {
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const handler = (): void => {
    void Promise.all(servers.map((s) => s.drain(options.timeoutMs))).finally(() => options.onDrained?.());
  };
  for (const signal of signals) process.once(signal, handler);
  return () => {
    for (const signal of signals) process.removeListener(signal, handler);
  };
}
