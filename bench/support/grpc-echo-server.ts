/**
 * The transport floor of `pnpm bench vault`: a bare grpc-js server over mutual TLS with one unary method that answers
 * a fixed 200 bytes (the size of a reveal's answer) and does nothing else — no interceptors, no storage, no bus.
 * Started as its own process like the vault, so a reveal's latency can be read against what one gRPC round trip
 * costs on the same machine in the same run. Prints the port it listens on, then serves until killed.
 *
 * Usage: tsx bench/support/grpc-echo-server.ts CA_FILE CERT_FILE KEY_FILE
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { rawBytesUnaryMethod } from '@sealpost/testkit';

export const ECHO_METHOD = '/sealpost.bench.Echo/Call';
export const ECHO_SERVICE = { call: rawBytesUnaryMethod(ECHO_METHOD) } satisfies grpc.ServiceDefinition;

if (require.main === module) {
  const [caFile, certFile, keyFile] = process.argv.slice(2);
  if (!caFile || !certFile || !keyFile) throw new Error('usage: grpc-echo-server.ts CA_FILE CERT_FILE KEY_FILE');
  const answer = Buffer.alloc(200, 1);
  const server = new grpc.Server();
  server.addService(ECHO_SERVICE, {
    call: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) => callback(null, answer),
  });
  const credentials = grpc.ServerCredentials.createSsl(
    readFileSync(caFile),
    [{ cert_chain: readFileSync(certFile), private_key: readFileSync(keyFile) }],
    true,
  );
  server.bindAsync('127.0.0.1:0', credentials, (error, port) => {
    if (error) throw error;
    process.stdout.write(`${port}\n`);
  });
}
