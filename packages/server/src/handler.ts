import * as grpc from '@grpc/grpc-js';
import { AppError, callAccessOf, toGrpcError, type CallAccess, type Principal } from '@sealpost/access';

/** What a handler knows about its call besides the request. */
export interface CallContext {
  /** Aborted when the deadline passes or the client cancels; pass it to every I/O call. */
  readonly signal: AbortSignal;
  /** The client's deadline, if it set one. */
  readonly deadline: Date | undefined;
  readonly metadata: grpc.Metadata;
  /** Full method path, `/pkg.Service/Method`. */
  readonly method: string;
  /** The authenticated principal; throws if the server has no access interceptor. */
  readonly principal: Principal;
  /** Principal, matched rule and validated purpose (see `@sealpost/access` `callAccessOf`). */
  readonly access: CallAccess;
}

type AnyServerCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>;

function contextOf(call: AnyServerCall): { ctx: CallContext; done: () => void } {
  const controller = new AbortController();
  const onCancel = (): void => {
    if (!controller.signal.aborted)
      controller.abort(new AppError('CANCELLED', 'CALL_CANCELLED', 'the call was cancelled'));
  };
  call.once('cancelled', onCancel);
  const raw = call.getDeadline();
  const deadlineMs = raw instanceof Date ? raw.getTime() : raw;
  let timer: NodeJS.Timeout | undefined;
  // grpc-js also cancels the call at the deadline, but our own timer makes the signal independent of its timing.
  if (Number.isFinite(deadlineMs)) {
    timer = setTimeout(
      () => {
        if (!controller.signal.aborted) {
          controller.abort(new AppError('DEADLINE_EXCEEDED', 'DEADLINE_EXCEEDED', 'the deadline passed'));
        }
      },
      Math.max(0, deadlineMs - Date.now()),
    );
    timer.unref();
  }
  const ctx: CallContext = {
    signal: controller.signal,
    deadline: Number.isFinite(deadlineMs) ? new Date(deadlineMs) : undefined,
    metadata: call.metadata,
    method: call.getPath(),
    get principal() {
      return callAccessOf(call).principal;
    },
    get access() {
      return callAccessOf(call);
    },
  };
  return {
    ctx,
    done: () => {
      if (timer) clearTimeout(timer);
      call.removeListener('cancelled', onCancel);
    },
  };
}

/** Adapts an async unary handler: errors go through the one mapping (`toGrpcError`); the context carries a signal. */
export function unary<Req, Res>(
  handler: (request: Req, ctx: CallContext) => Promise<Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const { ctx, done } = contextOf(call as AnyServerCall);
    handler(call.request, ctx).then(
      (response) => {
        done();
        callback(null, response);
      },
      (err: unknown) => {
        done();
        callback(toGrpcError(err));
      },
    );
  };
}

/** Adapts an async server-streaming handler; `send` waits for flow control and throws once the call is aborted. */
export function serverStreaming<Req, Res>(
  handler: (request: Req, send: (message: Res) => Promise<void>, ctx: CallContext) => Promise<void>,
): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    const { ctx, done } = contextOf(call as AnyServerCall);
    const send = (message: Res): Promise<void> => {
      if (ctx.signal.aborted) return Promise.reject(ctx.signal.reason);
      return new Promise((resolve) => {
        if (call.write(message)) resolve();
        else call.once('drain', resolve);
      });
    };
    handler(call.request, send, ctx).then(
      () => {
        done();
        call.end();
      },
      (err: unknown) => {
        done();
        // grpc-js turns an 'error' event on a server stream into the call's final status.
        call.emit('error', toGrpcError(err));
      },
    );
  };
}
