/**
 * The image's HEALTHCHECK (deploy/Dockerfile): one gRPC `grpc.health.v1.Health/Check` for the whole server on the
 * service's health-only listener (plain text, no client certificate, like the kubelet's gRPC probe). Exit 0 when
 * SERVING, 1 otherwise. The port comes from image.json (written by deploy/build-image-dir.sh), unless the
 * service's SEALPOST_<SERVICE>_HEALTH_ADDR setting moves it. Messages are encoded by hand: the request is an
 * empty HealthCheckRequest, the answer's field 1 is the status enum (1 = SERVING).
 */
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import process from 'node:process';
import { URL } from 'node:url';

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js');
const image = JSON.parse(readFileSync(new URL('./image.json', import.meta.url), 'utf8'));

const configured = process.env[image.healthAddrSetting];
const port = configured ? configured.slice(configured.lastIndexOf(':') + 1) : String(image.healthPort);
const host = '127.0.0.1'; // the listener binds 0.0.0.0 in production; the check runs inside the container
const SERVING = 1;

const client = new grpc.Client(`${host}:${port}`, grpc.credentials.createInsecure());
client.makeUnaryRequest(
  '/grpc.health.v1.Health/Check',
  () => Buffer.alloc(0),
  (bytes) => (bytes.length >= 2 && bytes[0] === 0x08 ? bytes[1] : 0),
  {},
  { deadline: Date.now() + 2500 },
  (err, status) => {
    client.close();
    if (err) {
      process.stderr.write(`health check failed: ${err.code} ${err.details}\n`);
      process.exit(1);
    }
    process.stdout.write(`${status === SERVING ? 'SERVING' : `NOT_SERVING (${status})`}\n`);
    process.exit(status === SERVING ? 0 : 1);
  },
);
