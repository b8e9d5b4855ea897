/**
 * Server interceptor counting every call and its latency by method path and gRPC status name
 * (`sealpost_grpc_server_requests_total`, `sealpost_grpc_server_duration_seconds`). createGrpcServer puts it
 * outermost, so calls refused by the access interceptor are counted with their status too.
 */
import * as grpc from '@grpc/grpc-js';
import { sealpostMetrics, type BoundCounter, type BoundRecord } from '@sealpost/telemetry';

// Status names by number (OK, CANCELLED, ... UNAUTHENTICATED): what the dashboards and alerts match.
const STATUS_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(grpc.status)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v as number, k]),
);

interface Bound {
  readonly count: BoundCounter;
  readonly duration: BoundRecord;
}

/** The interceptor; instruments come from the meter provider current when it is created. */
export function createMetricsInterceptor(): grpc.ServerInterceptor {
  const m = sealpostMetrics('grpc');
  const requests = m.counter('sealpost_grpc_server_requests_total');
  const durations = m.histogram('sealpost_grpc_server_duration_seconds');
  // Bounded: grpc-js runs interceptors only for registered methods, and there are ~17 status codes.
  const bound = new Map<string, Map<number, Bound>>();
  const handleFor = (method: string, code: number): Bound => {
    let byCode = bound.get(method);
    if (byCode === undefined) bound.set(method, (byCode = new Map()));
    let handle = byCode.get(code);
    if (handle === undefined) {
      const labels = { method, code: STATUS_NAMES[code] ?? 'UNKNOWN' };
      handle = { count: requests.bind(labels), duration: durations.bind(labels) };
      byCode.set(code, handle);
    }
    return handle;
  };

  return (methodDescriptor, call) => {
    const method = methodDescriptor.path;
    const started = performance.now();
    let done = false;
    const record = (code: number): void => {
      if (done) return;
      done = true;
      const handle = handleFor(method, code);
      handle.count.add(1);
      handle.duration.record((performance.now() - started) / 1000);
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => next({ onCancel: () => record(grpc.status.CANCELLED) }),
      sendStatus: (status, next) => {
        record(status.code);
        next(status);
      },
    });
  };
}
