/**
 * A tiny OTLP/HTTP receiver for tests: collects protobuf request bodies and decodes the span fields the
 * assertions need (enough of opentelemetry/proto/trace/v1 to read names, ids, kinds and string attributes).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  service: string;
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  attributes: Record<string, string>;
}

export interface OtlpReceiver {
  readonly url: string;
  readonly bodies: { path: string; body: Buffer }[];
  spans(): ReceivedSpan[];
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const bodies: { path: string; body: Buffer }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      bodies.push({ path: req.url ?? '', body: Buffer.concat(chunks) });
      // An empty Export*ServiceResponse is zero bytes of protobuf.
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    bodies,
    spans: () => bodies.filter((b) => b.path === '/v1/traces').flatMap((b) => decodeTraces(b.body)),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

interface Field {
  no: number;
  value: bigint | Buffer;
}

function readVarint(buf: Buffer, start: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  let i = start;
  for (;;) {
    const byte = buf[i++];
    if (byte === undefined) throw new Error('truncated varint');
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, i];
    shift += 7n;
  }
}

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let i = 0;
  while (i < buf.length) {
    const [key, next] = readVarint(buf, i);
    i = next;
    const no = Number(key >> 3n);
    switch (Number(key & 7n)) {
      case 0: {
        const [value, after] = readVarint(buf, i);
        out.push({ no, value });
        i = after;
        break;
      }
      case 1:
        out.push({ no, value: buf.subarray(i, i + 8) });
        i += 8;
        break;
      case 2: {
        const [length, after] = readVarint(buf, i);
        const end = after + Number(length);
        out.push({ no, value: buf.subarray(after, end) });
        i = end;
        break;
      }
      case 5:
        out.push({ no, value: buf.subarray(i, i + 4) });
        i += 4;
        break;
      default:
        throw new Error('unsupported wire type');
    }
  }
  return out;
}

const bytesOf = (f: Field[], no: number): Buffer[] =>
  f.filter((x) => x.no === no && Buffer.isBuffer(x.value)).map((x) => x.value as Buffer);
const firstBytes = (f: Field[], no: number): Buffer => bytesOf(f, no)[0] ?? Buffer.alloc(0);

function attributesOf(keyValues: Buffer[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of keyValues) {
    const f = fields(kv);
    const key = firstBytes(f, 1).toString('utf8');
    const any = fields(firstBytes(f, 2));
    const str = bytesOf(any, 1)[0];
    const int = any.find((x) => x.no === 3 && typeof x.value === 'bigint');
    out[key] = str !== undefined ? str.toString('utf8') : int !== undefined ? String(int.value) : '';
  }
  return out;
}

function decodeTraces(body: Buffer): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const resourceSpans of bytesOf(fields(body), 1)) {
    const rs = fields(resourceSpans);
    const service = attributesOf(bytesOf(fields(firstBytes(rs, 1)), 1))['service.name'] ?? '';
    for (const scopeSpans of bytesOf(rs, 2)) {
      for (const spanBytes of bytesOf(fields(scopeSpans), 2)) {
        const s = fields(spanBytes);
        const kind = s.find((x) => x.no === 6 && typeof x.value === 'bigint');
        spans.push({
          service,
          traceId: firstBytes(s, 1).toString('hex'),
          spanId: firstBytes(s, 2).toString('hex'),
          parentSpanId: firstBytes(s, 4).toString('hex'),
          name: firstBytes(s, 5).toString('utf8'),
          kind: kind ? Number(kind.value) : 0,
          attributes: attributesOf(bytesOf(s, 9)),
        });
      }
    }
  }
  return spans;
}
