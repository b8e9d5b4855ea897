import type * as grpc from '@grpc/grpc-js';
import { AppError, callAccessOf, toGrpcError, type CallAccess } from '@sealpost/access';

/** What a bidi handler knows about its call. */
export interface StreamContext {
  readonly access: CallAccess;
  readonly metadata: grpc.Metadata;
  /** Aborted when the client cancels. */
  readonly signal: AbortSignal;
}

/**
 * Adapts an async bidi-streaming handler (@sealpost/server offers unary and server-streaming only): requests come
 * as an async iterable, `send` waits for flow control, errors go through the one mapping (`toGrpcError`).
 * TODO(server): move beside `serverStreaming` in @sealpost/server once another service needs it.
 */
export function bidiStreaming<Req, Res>(
  handler: (requests: AsyncIterable<Req>, send: (message: Res) => Promise<void>, ctx: StreamContext) => Promise<void>,
  mapError: (err: unknown) => unknown = (err) => err,
): grpc.handleBidiStreamingCall<Req, Res> {
  return (call) => {
    const controller = new AbortController();
    call.once('cancelled', () => {
      if (!controller.signal.aborted) {
        controller.abort(new AppError('CANCELLED', 'CALL_CANCELLED', 'the call was cancelled'));
      }
    });
    const send = (message: Res): Promise<void> => {
      if (controller.signal.aborted) return Promise.reject(controller.signal.reason);
      return new Promise((resolve) => {
        if (call.write(message)) resolve();
        else call.once('drain', resolve);
      });
    };
    let access: CallAccess;
    try {
      access = callAccessOf(call);
    } catch (err) {
      call.emit('error', toGrpcError(err));
      return;
    }
    // Not `for await (… of call)`: the default iterator destroys the duplex when reading ends, which would cut off
    // the responses still to be written and the final status.
    const requests: AsyncIterable<Req> = { [Symbol.asyncIterator]: () => call.iterator({ destroyOnReturn: false }) };
    handler(requests, send, { access, metadata: call.metadata, signal: controller.signal }).then(
      () => call.end(),
      (err: unknown) => call.emit('error', toGrpcError(mapError(err))),
    );
  };
}
