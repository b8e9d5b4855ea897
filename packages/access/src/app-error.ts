import * as grpc from '@grpc/grpc-js';

/** Metadata key (trailer) that carries the stable, machine-readable reason of a refusal. */
export const REASON_METADATA_KEY = 'x-sealpost-reason';

/**
 * Error categories, named exactly like the gRPC status they map to, so the mapping below is the only one in the
 * code base: domain code picks a category and a reason, the transport picks nothing.
 */
export const ERROR_CATEGORIES = [
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'FAILED_PRECONDITION',
  'PERMISSION_DENIED',
  'UNAUTHENTICATED',
  'UNAVAILABLE',
  'OUT_OF_RANGE',
  'RESOURCE_EXHAUSTED',
  'ABORTED',
  'DEADLINE_EXCEEDED',
  'CANCELLED',
  'UNIMPLEMENTED',
  'INTERNAL',
] as const;
export type ErrorCategory = (typeof ERROR_CATEGORIES)[number];

const REASON_PATTERN = /^[A-Z][A-Z0-9_]{1,63}$/;

/**
 * An expected failure with a category (→ gRPC status) and a stable reason such as `CONTACT_NOT_FOUND`.
 * The message is sent to the caller, so it must never carry personal data or secrets.
 */
export class AppError extends Error {
  readonly code: ErrorCategory;
  readonly reason: string;

  constructor(code: ErrorCategory, reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    if (!REASON_PATTERN.test(reason)) throw new TypeError(`AppError reason must be UPPER_SNAKE_CASE, got ${reason}`);
    this.name = 'AppError';
    this.code = code;
    this.reason = reason;
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}

/** The gRPC status object for an error; anything that is not an AppError becomes a generic INTERNAL. */
export function toGrpcStatus(err: unknown): grpc.StatusObject {
  const metadata = new grpc.Metadata();
  if (err instanceof AppError) {
    metadata.set(REASON_METADATA_KEY, err.reason);
    return { code: grpc.status[err.code], details: err.message, metadata };
  }
  // Unknown errors are bugs or infrastructure failures: their messages may hold anything, so none of it leaves.
  metadata.set(REASON_METADATA_KEY, 'INTERNAL');
  return { code: grpc.status.INTERNAL, details: 'internal error', metadata };
}

/** A `ServiceError`-shaped value for grpc-js callbacks (`callback(toGrpcError(err))`). */
export function toGrpcError(err: unknown): grpc.ServiceError {
  const status = toGrpcStatus(err);
  const out = new Error(status.details) as grpc.ServiceError;
  out.code = status.code;
  out.details = status.details;
  out.metadata = status.metadata;
  // The stack points into our code; the status object is what travels, but keep nothing sensitive around.
  out.stack = undefined;
  return out;
}
