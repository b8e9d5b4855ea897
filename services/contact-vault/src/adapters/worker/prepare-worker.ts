/**
 * Worker thread entry of `WorkerRowPreparer`: prepares rows with the domain's own functions and answers each request
 * with one result per row (`null` where the row is invalid; the caller re-runs those for the error).
 */
import { parentPort } from 'node:worker_threads';
import { sealNewContact } from '@sealpost/crypto';
import { indexesOf, newContactId, normalizeFields, toSealable } from '../../domain';
import type { PrepareKeys, PrepareRequest, PreparedImportRow } from '../../ports/import-row-preparer';
import { packReply } from './prepare-wire';

function prepare(request: PrepareRequest, keys: PrepareKeys | undefined): PreparedImportRow | null {
  let fields;
  try {
    fields = normalizeFields(request.fields, request.policy);
  } catch {
    return null;
  }
  if (keys === undefined) return { fields };
  try {
    const contactId = newContactId(keys.nowMs);
    return {
      fields,
      indexes: indexesOf([keys.indexKeys], fields),
      draft: { contactId, ...sealNewContact(keys.kek, contactId, toSealable(fields)) },
    };
  } catch {
    return { fields }; // the caller indexes and seals in line, and meets the error there
  }
}

parentPort!.on('message', (message: { id: number; requests: PrepareRequest[]; keys?: PrepareKeys }) => {
  const reply = packReply(
    message.id,
    message.requests.map((request) => prepare(request, message.keys)),
  );
  parentPort!.postMessage(reply, [reply.bytes]);
});
// A request that cannot be read has no id to answer: end the thread, and the caller prepares everything in line.
parentPort!.on('messageerror', () => process.exit(1));
// Loaded (TypeScript compiled, libphonenumber's metadata read): from now on batches are worth sending here.
parentPort!.postMessage({ ready: true });
