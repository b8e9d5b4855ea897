/**
 * The JetStream pull loop of one running subscription, on the plain NATS connection (pull requests to
 * `$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>`, deliveries to this stream's own inbox):
 *
 * - Prefetch, bounded: messages waiting to be handed over plus messages requested but not yet received never
 *   exceed `prefetch` (one batch). So while the handler works on one batch, the next one is on its way, and
 *   at most two batches of this consumer are held in memory.
 * - Fenced close: `close()` stops pulling, then drains the inbox subscription (UNSUB, then a PING/PONG round
 *   trip). Whatever the server sent to an outstanding pull before it saw the UNSUB still arrives and is
 *   queued for the handler; after the PONG the server delivers nothing more there, since it checks the reply
 *   subject's interest before each delivery. Unsubscribing outright instead dropped deliveries already on the
 *   wire: they stayed unacknowledged, came back only after the ack wait, late and after later events on the
 *   same subject (the restart-on-the-same-connection contract test).
 * - Short pull expiry, so a pull the server lost (restart, reconnect, leadership change) is noticed and
 *   replaced within seconds.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';

/** One delivery with the facts JetStream encodes in its ack subject. */
export interface PulledMessage {
  readonly msg: Msg;
  readonly stream: string;
  readonly streamSeq: number;
  /** 1 on first delivery. */
  readonly deliveries: number;
  /** Messages of the consumer not yet delivered (JetStream `num_pending`) as of this delivery. */
  readonly pending: number;
}

export interface PullStreamOptions {
  readonly stream: string;
  readonly consumer: string;
  /** Upper bound on messages queued here plus messages requested and not yet received. */
  readonly prefetch: number;
  /** Inbox prefix the connection's user may subscribe under (`_INBOX_<service>`). */
  readonly inboxPrefix: string;
  /** JetStream API prefix (default `$JS.API`). */
  readonly apiPrefix?: string;
  /** How long one pull request waits on the server (default 5 s). */
  readonly expiresMs?: number;
  /** Trouble the caller cannot see: a refused pull, an unparseable delivery. */
  readonly onError: (error: unknown) => void;
}

/** The server answered a pull request with an error status (consumer deleted, no responders, …). */
export class PullStatusError extends Error {
  readonly code = 'BUS_PULL_STATUS';
  constructor(
    readonly status: number,
    description: string,
  ) {
    // The description is the server's fixed text (e.g. "Consumer Deleted"): no message content.
    super(`jetstream pull ended with ${status} ${description.slice(0, 80)}`);
    this.name = 'PullStatusError';
  }
}

const DEFAULT_EXPIRES_MS = 5000;
/** Past its expiry plus this, a pull whose end the server never reported is taken as lost. */
const LOST_PULL_GRACE_MS = 1000;
/** Longest an ack waits to go out with others while handlers keep the thread busy. */
const MAX_ACK_DELAY_MS = 50;
/** Pause before pulling again after the server refused a pull. */
const REFUSED_PULL_PAUSE_MS = 1000;

const encoder = new TextEncoder();
const ACK = encoder.encode('+ACK');
const NAK = encoder.encode('-NAK');
const TERM = encoder.encode('+TERM');

interface PullRequest {
  readonly batch: number;
  readonly expiresAt: number;
}

export class PullStream {
  private readonly inbox: string;
  private readonly subscription: Subscription;
  private readonly nextSubject: string;
  private readonly expiresMs: number;
  /** Received, not yet taken; `head` is the first live index (no O(n) shift per take). */
  private queue: PulledMessage[] = [];
  private head = 0;
  /** Requested, not yet received (summed over the open pull requests). */
  private outstanding = 0;
  private readonly requests = new Map<string, PullRequest>();
  private requestCounter = 0;
  private pausedUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private waiter: (() => void) | undefined;
  private closing = false;
  /** Nothing more can arrive: drained after close, or the subscription ended. */
  private ended = false;
  private failure: unknown;
  private drained: Promise<void> | undefined;
  /** Handled messages whose ack is still to be sent. */
  private acks: Msg[] = [];
  private oldestAckAt = 0;
  private ackTurn: NodeJS.Immediate | undefined;

  constructor(
    private readonly connection: NatsConnection,
    private readonly options: PullStreamOptions,
  ) {
    this.inbox = createInbox(options.inboxPrefix);
    this.nextSubject = `${options.apiPrefix ?? '$JS.API'}.CONSUMER.MSG.NEXT.${options.stream}.${options.consumer}`;
    this.expiresMs = options.expiresMs ?? DEFAULT_EXPIRES_MS;
    // One subscription for every pull of this stream; each pull replies to its own token under it, so a
    // status (timeout, refusal) says which pull ended.
    this.subscription = connection.subscribe(`${this.inbox}.*`, {
      callback: (error, msg) => (error !== null ? this.fail(error) : this.receive(msg)),
    });
    void this.subscription.closed.then((error) => {
      if (error instanceof Error) this.fail(error);
      this.end();
    });
    this.topUp();
  }

  /**
   * Up to `max` received messages in delivery order, waiting until at least one is there. Empty once the
   * stream has ended (closed and drained, or its subscription or connection went away) and nothing is left.
   * Throws when the subscription failed (e.g. the server refused it).
   */
  async take(max: number): Promise<PulledMessage[]> {
    this.sendAcks();
    while (this.head === this.queue.length) {
      if (this.failure !== undefined) throw this.failure;
      if (this.ended) return [];
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.waiter = undefined;
      // One event-loop turn: the rest of a burst that reached the socket in several reads (TLS records) joins
      // this take instead of waiting for the next one.
      await yieldToEventLoop();
    }
    const end = Math.min(this.queue.length, this.head + max);
    const taken = this.queue.slice(this.head, end);
    this.head = end;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    }
    // Room freed: the next batch is requested now, while the caller handles this one.
    this.topUp();
    return taken;
  }

  /** Stops pulling and resolves once nothing more can arrive; what arrived meanwhile is still taken. */
  close(): Promise<void> {
    if (this.drained !== undefined) return this.drained;
    this.closing = true;
    this.clearTimer();
    this.drained = (async () => {
      if (!this.subscription.isClosed() && !this.connection.isClosed()) {
        try {
          await this.subscription.drain();
        } catch {
          // The connection closed meanwhile: nothing more arrives either way.
        }
      }
      this.end();
    })();
    return this.drained;
  }

  /** The connection reconnected: pulls sent before may be gone with the old server session. */
  reconnected(): void {
    this.requests.clear();
    this.outstanding = 0;
    this.topUp();
  }

  /**
   * Acks are sent together rather than one socket write each (which dominated one-at-a-time consuming):
   * with the next `take`, on the next event-loop turn (so a handler awaiting I/O does not hold them back),
   * or once the oldest waited `MAX_ACK_DELAY_MS`, whichever comes first.
   */
  ack(message: PulledMessage): void {
    this.acks.push(message.msg);
    if (this.acks.length === 1) {
      this.oldestAckAt = Date.now();
      this.ackTurn = setImmediate(() => this.sendAcks());
    } else if (Date.now() - this.oldestAckAt >= MAX_ACK_DELAY_MS) this.sendAcks();
  }

  /** Redelivery no earlier than `delayMs` from now (at once for 0). */
  nak(message: PulledMessage, delayMs: number): void {
    message.msg.respond(delayMs > 0 ? encoder.encode(`-NAK {"delay":${Math.round(delayMs) * 1_000_000}}`) : NAK);
  }

  term(message: PulledMessage): void {
    message.msg.respond(TERM);
  }

  private sendAcks(): void {
    if (this.ackTurn !== undefined) clearImmediate(this.ackTurn);
    this.ackTurn = undefined;
    if (this.acks.length === 0) return;
    const acks = this.acks;
    this.acks = [];
    try {
      for (const msg of acks) msg.respond(ACK);
    } catch (error) {
      // The connection closed: these come back after their ack wait, and apply-once absorbs them.
      this.options.onError(error);
    }
  }

  private receive(msg: Msg): void {
    const reply = msg.reply;
    if (reply === undefined || reply === '') {
      this.status(msg);
      return;
    }
    const delivery = parseDelivery(msg, reply);
    if (delivery === null) {
      this.options.onError(new PullStatusError(0, 'delivery without a JetStream ack subject'));
      return;
    }
    if (this.outstanding > 0) this.outstanding--;
    this.queue.push(delivery);
    this.waiter?.();
  }

  private status(msg: Msg): void {
    const code = msg.headers?.code ?? 0;
    // 100: heartbeat / flow control (not requested); nothing ended.
    if (code === 100 || code === 0) return;
    const token = msg.subject.slice(this.inbox.length + 1);
    const request = this.requests.get(token);
    if (request !== undefined) {
      this.requests.delete(token);
      const left = Number(msg.headers?.get('Nats-Pending-Messages'));
      this.outstanding -= Number.isInteger(left) && left >= 0 ? left : request.batch;
      this.resync();
    }
    // 408: the pull expired (the normal end of an idle pull). Anything else is a refusal worth reporting
    // (consumer deleted, no responders, limits); pulling resumes after a pause instead of spinning.
    if (code !== 408 && code !== 404) {
      this.options.onError(new PullStatusError(code, msg.headers?.description ?? ''));
      this.pausedUntil = Date.now() + REFUSED_PULL_PAUSE_MS;
    }
    this.topUp();
  }

  /** Keeps the outstanding count within what the open pulls can still bring. */
  private resync(): void {
    if (this.requests.size === 0) {
      this.outstanding = 0;
      return;
    }
    let open = 0;
    for (const request of this.requests.values()) open += request.batch;
    this.outstanding = Math.max(0, Math.min(this.outstanding, open));
  }

  private topUp(): void {
    if (this.closing || this.ended || this.failure !== undefined) return;
    const now = Date.now();
    if (now < this.pausedUntil) {
      this.schedule(this.pausedUntil - now);
      return;
    }
    const { prefetch } = this.options;
    const room = prefetch - (this.queue.length - this.head) - this.outstanding;
    // Not one pull per message under a trickle: wait until a quarter of the window is free.
    if (room >= Math.max(1, Math.ceil(prefetch / 4))) {
      const token = (this.requestCounter++).toString(36);
      try {
        this.connection.publish(
          this.nextSubject,
          encoder.encode(`{"batch":${room},"expires":${this.expiresMs * 1_000_000}}`),
          {
            reply: `${this.inbox}.${token}`,
          },
        );
      } catch (error) {
        // The connection is closed or closing: the subscription ends with it.
        this.fail(error);
        return;
      }
      this.requests.set(token, { batch: room, expiresAt: now + this.expiresMs });
      this.outstanding += room;
    }
    if (this.requests.size > 0) this.schedule(this.expiresMs + LOST_PULL_GRACE_MS);
  }

  /** One timer (the earliest wanted): notices pulls the server lost, and resumes pulling after a pause. */
  private schedule(inMs: number): void {
    const at = Date.now() + inMs;
    if (this.timer !== undefined) {
      if (this.timerAt <= at) return;
      clearTimeout(this.timer);
    }
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = Date.now();
      for (const [token, request] of this.requests)
        if (request.expiresAt + LOST_PULL_GRACE_MS <= now) this.requests.delete(token);
      this.resync();
      this.topUp();
    }, inMs);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private fail(error: unknown): void {
    this.failure ??= error;
    this.end();
  }

  private end(): void {
    if (!this.connection.isClosed()) this.sendAcks();
    this.ended = true;
    this.clearTimer();
    this.waiter?.();
  }
}

/**
 * Reads the ack subject: `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>`, or with
 * domain and account hash after `ACK` (12 tokens). Null when it is not one.
 */
function parseDelivery(msg: Msg, reply: string): PulledMessage | null {
  const tokens = reply.split('.');
  const at = tokens.length === 9 ? 2 : tokens.length >= 11 ? 4 : -1;
  if (at < 0 || tokens[0] !== '$JS' || tokens[1] !== 'ACK') return null;
  const deliveries = Number(tokens[at + 2]);
  const streamSeq = Number(tokens[at + 3]);
  const pending = Number(tokens[at + 6]);
  if (!Number.isSafeInteger(deliveries) || !Number.isSafeInteger(streamSeq)) return null;
  return { msg, stream: tokens[at]!, streamSeq, deliveries, pending: Number.isSafeInteger(pending) ? pending : 0 };
}
