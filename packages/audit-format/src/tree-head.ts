/**
 * Signed tree head (STH) payload: the exact bytes a JWS over a tree head signs. This module only builds, parses
 * and validates the payload; tree-head-jws.ts checks signatures, and the audit service signs.
 *
 * Canonical form: JSON with the keys in RFC 8785 (JCS) order, no whitespace, integers only:
 *   {"logId":"<id>","rootHash":"<64 lowercase hex>","timestamp":<ms>,"treeSize":<n>}
 * The parser accepts only this form, so one head has one payload and a signature cannot be re-targeted
 * at a differently-formatted twin.
 */
import { HASH_SIZE, isCount } from './merkle';

/** A tree head: the log `logId` had `treeSize` entries with root `rootHash` at `timestamp` (ms). */
export interface TreeHead {
  readonly logId: string;
  readonly treeSize: number;
  /** Lowercase hex of the 32-byte root hash. */
  readonly rootHash: string;
  readonly timestamp: number;
}

export type TreeHeadErrorCode = 'INVALID_TREE_HEAD' | 'NON_CANONICAL_TREE_HEAD';

/** A tree head or its payload is refused; the message names the field, not its value. */
export class TreeHeadError extends Error {
  override readonly name = 'TreeHeadError';
  constructor(
    readonly code: TreeHeadErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const LOG_ID = /^[A-Za-z0-9._:/-]{1,128}$/;
const ROOT_HEX = new RegExp(`^[0-9a-f]{${HASH_SIZE * 2}}$`);
const KEYS = ['logId', 'rootHash', 'timestamp', 'treeSize'];

function invalid(field: string, rule: string): TreeHeadError {
  return new TreeHeadError('INVALID_TREE_HEAD', `tree head ${field}: ${rule}`);
}

/** Returns a clean copy of a well-formed tree head; throws TreeHeadError INVALID_TREE_HEAD naming the field. */
export function validateTreeHead(input: unknown): TreeHead {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw invalid('payload', 'must be an object');
  const h = input as Record<string, unknown>;
  const keys = Object.keys(h).sort();
  if (keys.length !== KEYS.length || keys.some((k, i) => k !== KEYS[i])) {
    throw invalid('payload', `must have exactly the fields ${KEYS.join(', ')}`);
  }
  if (typeof h.logId !== 'string' || !LOG_ID.test(h.logId))
    throw invalid('logId', 'must be an id of at most 128 characters');
  if (!isCount(h.treeSize)) throw invalid('treeSize', 'must be a non-negative integer');
  if (typeof h.rootHash !== 'string' || !ROOT_HEX.test(h.rootHash)) {
    throw invalid('rootHash', `must be ${HASH_SIZE * 2} lowercase hex digits`);
  }
  if (!isCount(h.timestamp)) throw invalid('timestamp', 'must be a non-negative integer number of milliseconds');
  return { logId: h.logId, treeSize: h.treeSize, rootHash: h.rootHash, timestamp: h.timestamp };
}

/** Canonical payload bytes for a tree head. Throws TreeHeadError INVALID_TREE_HEAD. */
export function encodeTreeHeadPayload(head: TreeHead): Buffer {
  const h = validateTreeHead(head);
  // Key order is fixed by hand (JCS order); the values are validated ASCII ids, hex and safe integers,
  // for which JSON.stringify output is already the JCS form.
  const json = `{"logId":${JSON.stringify(h.logId)},"rootHash":"${h.rootHash}","timestamp":${h.timestamp},"treeSize":${h.treeSize}}`;
  return Buffer.from(json, 'utf8');
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parses payload bytes (e.g. a verified JWS payload). Throws TreeHeadError INVALID_TREE_HEAD for bad JSON or
 * fields and NON_CANONICAL_TREE_HEAD when the bytes are not exactly the canonical encoding of the head.
 */
export function parseTreeHeadPayload(payload: Uint8Array): TreeHead {
  if (!(payload instanceof Uint8Array)) throw invalid('payload', 'must be bytes');
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(payload));
  } catch (cause) {
    throw new TreeHeadError('INVALID_TREE_HEAD', 'tree head payload: is not UTF-8 JSON', { cause });
  }
  const head = validateTreeHead(parsed);
  if (!encodeTreeHeadPayload(head).equals(payload)) {
    throw new TreeHeadError('NON_CANONICAL_TREE_HEAD', 'tree head payload: is not in canonical form');
  }
  return head;
}

/** The head's root hash as bytes. */
export function treeHeadRoot(head: TreeHead): Buffer {
  return Buffer.from(validateTreeHead(head).rootHash, 'hex');
}
