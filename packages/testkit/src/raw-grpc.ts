const identity = (value: Buffer): Buffer => value;

/**
 * A unary gRPC method whose messages are raw bytes: for services that tests and benchmarks define by hand, with no
 * generated code. Structurally a grpc-js `MethodDefinition<Buffer, Buffer>` (testkit does not depend on grpc-js).
 */
export function rawBytesUnaryMethod(path: string) {
  return {
    path,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  } as const;
}
