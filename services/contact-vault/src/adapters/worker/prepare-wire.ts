import type { BlindIndex } from '@sealpost/crypto';
import type { ContactFields } from '../../domain';
import type { PreparedImportRow } from '../../ports/import-row-preparer';

/**
 * How a prepared batch crosses from the worker: the drafts' records and wrapped keys are packed into one buffer that
 * is transferred, not copied, with offsets per row. Cloning two small byte arrays per row cost the receiving thread
 * more than the sealing it was spared.
 */
export interface WireReply {
  readonly id: number;
  readonly rows: readonly (WireRow | null)[];
  readonly bytes: ArrayBuffer;
}

interface WireRow {
  readonly fields: ContactFields;
  readonly indexes?: readonly BlindIndex[];
  readonly draft?: {
    readonly contactId: string;
    readonly dataKeyId: string;
    readonly kekVersion: number;
    /** The record at `at`, its wrapped key right after it. */
    readonly at: number;
    readonly recordLength: number;
    readonly keyLength: number;
  };
}

/** Packs a batch's results for `postMessage(reply, [reply.bytes])` (`null`: the row was not prepared). */
export function packReply(id: number, results: readonly (PreparedImportRow | null)[]): WireReply {
  let total = 0;
  for (const r of results) if (r?.draft) total += r.draft.record.length + r.draft.dataKey.wrapped.length;
  const bytes = new Uint8Array(total);
  let at = 0;
  const rows = results.map((r): WireRow | null => {
    if (!r) return null;
    const prepared = { fields: r.fields, ...(r.indexes && { indexes: r.indexes }) };
    if (!r.draft) return prepared;
    const { contactId, record, dataKey } = r.draft;
    bytes.set(record, at);
    bytes.set(dataKey.wrapped, at + record.length);
    const draft = {
      contactId,
      dataKeyId: dataKey.dataKeyId,
      kekVersion: dataKey.kekVersion,
      at,
      recordLength: record.length,
      keyLength: dataKey.wrapped.length,
    };
    at += record.length + dataKey.wrapped.length;
    return { ...prepared, draft };
  });
  return { id, rows, bytes: bytes.buffer };
}

/** The results of a packed reply; drafts' bytes are views of the one transferred buffer. */
export function unpackReply(reply: WireReply): (PreparedImportRow | undefined)[] {
  const bytes = Buffer.from(reply.bytes);
  return reply.rows.map((r): PreparedImportRow | undefined => {
    if (r === null) return undefined;
    const prepared = { fields: r.fields, ...(r.indexes && { indexes: r.indexes }) };
    if (!r.draft) return prepared;
    const { contactId, dataKeyId, kekVersion, at, recordLength, keyLength } = r.draft;
    const record = bytes.subarray(at, at + recordLength);
    const wrapped = bytes.subarray(at + recordLength, at + recordLength + keyLength);
    return { ...prepared, draft: { contactId, record, dataKey: { dataKeyId, kekVersion, wrapped } } };
  });
}
