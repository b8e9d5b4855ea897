export {
  boundEndpoint,
  createGrpcServer,
  drainOnSignals,
  type GrpcServer,
  type GrpcServerOptions,
  type GrpcServerPorts,
} from './create-grpc-server';
export { createMetricsInterceptor } from './metrics-interceptor';
export { createHealthCredentials, createServerCredentials, type ServerTlsOptions } from './tls-credentials';
export { serverStreaming, unary, type CallContext } from './handler';
export {
  MemoryIdempotencyStore,
  REQUEST_ID_METADATA_KEY,
  createIdempotency,
  requestFingerprint,
  requestIdOf,
  type Idempotency,
  type IdempotencyOptions,
  type IdempotencyStore,
} from './idempotency';
// The one error → status mapping lives in @sealpost/access (the lower layer, whose interceptor refuses calls
// too); services import it from here with the rest of the server scaffold.
export {
  AppError,
  REASON_METADATA_KEY,
  isAppError,
  toGrpcError,
  toGrpcStatus,
  type ErrorCategory,
} from '@sealpost/access';
export { runServiceProcess, type RunningServiceHandle, type StartService } from './service-process';
