/**
 * Worker thread entry of `WorkerFieldNormalizer`: normalises rows with the domain's own `normalizeFields` and answers
 * each request with one result per row (`null` where the row is invalid; the caller re-runs those for the error).
 */
import { parentPort } from 'node:worker_threads';
import { normalizeFields } from '../../domain/contact-fields';
import type { NormalizeRequest } from '../../ports/field-normalizer';

parentPort!.on('message', (message: { id: number; requests: NormalizeRequest[] }) => {
  const results = message.requests.map((request) => {
    try {
      return normalizeFields(request.fields, request.policy);
    } catch {
      return null;
    }
  });
  parentPort!.postMessage({ id: message.id, results });
});
// Loaded (TypeScript compiled, libphonenumber's metadata read): from now on batches are worth sending here.
parentPort!.postMessage({ ready: true });
