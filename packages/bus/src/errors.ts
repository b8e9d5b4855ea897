/**
 * Named bus errors. Messages never carry personal data: they name subjects (ids only), streams and codes.
 */
export type BusErrorCode =
  | 'BUS_PUBLISH_NOT_ALLOWED'
  | 'BUS_CONSUME_NOT_ALLOWED'
  | 'BUS_INVALID_ENVELOPE'
  | 'BUS_PAYLOAD_TOO_LARGE'
  | 'BUS_INVALID_OPTIONS'
  | 'BUS_UNSAFE_STREAM_CONFIG'
  | 'BUS_NO_STREAM'
  | 'BUS_STREAM_FULL'
  | 'BUS_PUBLISH_FAILED'
  | 'BUS_CLOSED'
  | 'BUS_POISON_MESSAGE'
  | 'BUS_OUTBOX_INVALID_UPDATE'
  | 'BUS_LEASE_LOST';

/** Base class: every bus error has a stable `code`. */
export class BusError extends Error {
  constructor(
    readonly code: BusErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The service's grant does not allow publishing on this subject; nothing was sent. */
export class PublishNotAllowedError extends BusError {
  constructor(
    readonly service: string,
    readonly subject: string,
    options?: { cause?: unknown },
  ) {
    super('BUS_PUBLISH_NOT_ALLOWED', `service ${service} may not publish on subject ${subject}`, options);
  }
}

/** The service's grant does not allow consuming this domain's stream. */
export class ConsumeNotAllowedError extends BusError {
  constructor(service: string, what: string) {
    super('BUS_CONSUME_NOT_ALLOWED', `service ${service} may not consume ${what}`);
  }
}

/** An envelope (outgoing or incoming) is malformed; the message says which field, never its value. */
export class InvalidEnvelopeError extends BusError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BUS_INVALID_ENVELOPE', message, options);
  }
}

export class PayloadTooLargeError extends BusError {
  constructor(size: number, max: number) {
    super('BUS_PAYLOAD_TOO_LARGE', `payload of ${size} bytes exceeds the limit of ${max}`);
  }
}

export class InvalidBusOptionsError extends BusError {
  constructor(message: string) {
    super('BUS_INVALID_OPTIONS', message);
  }
}

/** A stream setting is unsafe for this deployment (e.g. audit replicas below the production minimum). */
export class UnsafeStreamConfigError extends BusError {
  constructor(message: string) {
    super('BUS_UNSAFE_STREAM_CONFIG', message);
  }
}

/** No stream captures the subject (or the named stream does not exist): `ensureStreams()` has not run. */
export class NoStreamError extends BusError {
  constructor(what: string, options?: { cause?: unknown }) {
    super('BUS_NO_STREAM', `no stream for ${what}`, options);
  }
}

export class StreamFullError extends BusError {
  constructor(stream: string) {
    super('BUS_STREAM_FULL', `stream ${stream} is full and discards new messages`);
  }
}

export class PublishFailedError extends BusError {
  constructor(subject: string, options?: { cause?: unknown }) {
    super('BUS_PUBLISH_FAILED', `publish on ${subject} was not acknowledged`, options);
  }
}

export class BusClosedError extends BusError {
  constructor() {
    super('BUS_CLOSED', 'the bus is closed');
  }
}

export class LeaseLostError extends BusError {
  constructor(name: string) {
    super('BUS_LEASE_LOST', `lease ${name} was lost`);
  }
}

/**
 * Thrown by a handler for a message that can never succeed (bad payload, unknown version): the adapter
 * dead-letters it at once instead of retrying. `reason` is a short code (it lands in a header), not free text.
 */
export class PoisonMessageError extends BusError {
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super('BUS_POISON_MESSAGE', `poison message: ${reason}`, options);
  }
}
