/**
 * Pipelined JetStream publishing: each message goes out with a reply subject under ONE wildcard
 * subscription of this process's inbox, and the stream's ack is matched back by token. Unlike
 * `js.publish` (a request with its own timer, deferred and two error objects per message) the cost per
 * message is a map entry; timeouts are swept by one timer. Semantics are the same: a promise per message
 * that resolves on the stream's ack.
 */
import { createInbox, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { BusClosedError, NoStreamError, PublishFailedError } from '../errors';
import type { PublishAck } from '../port';

const decoder = new TextDecoder();

interface Pending {
  readonly subject: string;
  readonly deadline: number;
  readonly resolve: (ack: PublishAck) => void;
  readonly reject: (error: Error) => void;
}

interface JsPubAckReply {
  readonly stream?: string;
  readonly seq?: number;
  readonly duplicate?: boolean;
  readonly error?: { readonly code?: number; readonly err_code?: number; readonly description?: string };
}

/** The server's answer to a publish was an error (stream full, wrong expected sequence, …). */
class JetStreamPublishRefused extends Error {
  constructor(
    readonly status: number,
    readonly errCode: number,
    description: string,
  ) {
    // The description is the server's fixed text (e.g. "maximum bytes exceeded"): no message content.
    super(`jetstream refused the publish: ${status}/${errCode} ${description.slice(0, 120)}`);
    this.name = 'JetStreamPublishRefused';
  }
}

export class PipelinedPublisher {
  private readonly pending = new Map<string, Pending>();
  private subscription: Subscription | undefined;
  private prefix = '';
  private counter = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly connection: NatsConnection,
    private readonly inboxPrefix: string,
    private readonly timeoutMs: number,
  ) {
    void connection.closed().then(() => this.failAll(() => new BusClosedError()));
  }

  /** Sends one message and resolves with the stream's ack. Throws `NoStreamError`, `PublishFailedError`. */
  publish(subject: string, payload: Uint8Array, headers: MsgHdrs): Promise<PublishAck> {
    if (this.closed || this.connection.isClosed()) return Promise.reject(new BusClosedError());
    this.ensureSubscription();
    const token = (this.counter++).toString(36);
    return new Promise<PublishAck>((resolve, reject) => {
      this.pending.set(token, { subject, deadline: Date.now() + this.timeoutMs, resolve, reject });
      try {
        this.connection.publish(subject, payload, { reply: `${this.prefix}.${token}`, headers });
      } catch (error) {
        this.pending.delete(token);
        reject(new PublishFailedError(subject, { cause: error }));
        return;
      }
      this.timer ??= setTimeout(() => this.sweep(), this.timeoutMs);
    });
  }

  /** Publishes still waiting for their ack. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Resolves once every publish sent so far has settled (acked, refused or timed out). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  /** Stops accepting publishes; those in flight settle normally (call `settled()` first to wait for them). */
  close(): void {
    this.closed = true;
    this.failAll(() => new BusClosedError());
    this.subscription?.unsubscribe();
    this.subscription = undefined;
  }

  private ensureSubscription(): void {
    if (this.subscription !== undefined && !this.subscription.isClosed()) return;
    // A fresh inbox per (re)subscription, so a late ack for an old token can never match a new one.
    this.prefix = createInbox(this.inboxPrefix);
    this.subscription = this.connection.subscribe(`${this.prefix}.*`, {
      callback: (error, msg) => {
        if (error !== null) {
          // The subscription itself failed (e.g. a permission violation): nothing on it will be answered.
          this.failAll((subject) => new PublishFailedError(subject, { cause: error }));
          return;
        }
        const token = msg.subject.slice(this.prefix.length + 1);
        const entry = this.pending.get(token);
        if (entry === undefined) return; // timed out already
        this.pending.delete(token);
        this.settle(entry, msg.headers, msg.data);
      },
    });
  }

  private settle(entry: Pending, headers: MsgHdrs | undefined, data: Uint8Array): void {
    // No responders (status 503, empty body): no stream captures the subject.
    if (data.length === 0 && headers?.code === 503) {
      entry.reject(new NoStreamError(`subject ${entry.subject}`));
      return;
    }
    let reply: JsPubAckReply;
    try {
      reply = JSON.parse(decoder.decode(data)) as JsPubAckReply;
    } catch (error) {
      entry.reject(new PublishFailedError(entry.subject, { cause: error }));
      return;
    }
    if (reply.error !== undefined) {
      const { code = 0, err_code: errCode = 0, description = '' } = reply.error;
      const cause = new JetStreamPublishRefused(code, errCode, description);
      entry.reject(
        code === 503
          ? new NoStreamError(`subject ${entry.subject}`, { cause })
          : new PublishFailedError(entry.subject, { cause }),
      );
      return;
    }
    if (typeof reply.stream !== 'string' || reply.stream === '' || typeof reply.seq !== 'number') {
      entry.reject(new PublishFailedError(entry.subject, { cause: new Error('invalid ack response') }));
      return;
    }
    entry.resolve({ stream: reply.stream, seq: reply.seq, duplicate: reply.duplicate === true });
  }

  /** Times out expired publishes. Deadlines grow with insertion order, so the sweep stops at the first live one. */
  private sweep(): void {
    this.timer = undefined;
    const now = Date.now();
    for (const [token, entry] of this.pending) {
      if (entry.deadline > now) {
        this.timer = setTimeout(() => this.sweep(), entry.deadline - now);
        return;
      }
      this.pending.delete(token);
      entry.reject(new PublishFailedError(entry.subject, { cause: new Error('publish ack timeout') }));
    }
  }

  private failAll(make: (subject: string) => Error): void {
    const entries = [...this.pending.values()];
    this.pending.clear();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const entry of entries) entry.reject(make(entry.subject));
  }
}
