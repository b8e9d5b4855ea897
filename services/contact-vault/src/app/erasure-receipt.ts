/**
 * The erasure receipt: a JWS signed by the vault that cites the erasure's audit entry with the audit log's signed
 * tree head and the entry's inclusion proof, so a third party can check — with the vault's receipt key and the
 * audit's tree-head key only — that the erasure was recorded in the tamper-evident log.
 *
 * Payload (`format` ERASURE_RECEIPT_FORMAT), besides the erasure's ids, times and the erased/kept lists:
 *   auditEventId                       the audit event id, which the log uses as the entry id
 *   auditEntry.canonical               the canonical entry bytes (base64url) the Merkle leaf hashes
 *   auditEntry.leafHash                SHA-256(0x00 ‖ canonical), base64url
 *   treeHead                           {logId, treeSize, rootHash (hex), timestamp (ms)} exactly as `treeHead.jws`
 *                                      signs them, plus `kid` and `jws` (typ `sealpost-sth+jws`)
 *   inclusionProof                     {leafIndex, treeSize, hashes: base64url, leaf level first} (RFC 9162 §2.1.3)
 *
 * Why the canonical entry is carried, not only its leaf hash: a bare leaf hash would prove that *some* entry is in
 * the log, and a receipt could cite any entry. With the bytes, the verifier recomputes the leaf hash and decodes the
 * entry to see that it is this erasure (action `contact.erase`, this tenant, the contact and erasure ids). Carrying
 * them discloses nothing new: audit entries hold ids and codes only (the audit log refuses anything shaped like an
 * email address or phone number) — tenant, contact and erasure ids already in the receipt, the acting operator's or
 * service's id, the purpose code and ticket reference, the outcome and the time.
 */
import {
  AuditEntryError,
  ProofError,
  TreeHeadError,
  TreeHeadSignatureError,
  decodeAuditEntry,
  hashesEqual,
  leafHash,
  parseTreeHeadPayload,
  verifyInclusion,
  verifyTreeHeadJws,
  type AuditEntry,
} from '@sealpost/audit-format';
import { verifyCompactJws, type PublicJwk } from '@sealpost/crypto';
import { VaultError } from '../domain';
import type { PublishedAuditEntry } from '../ports/audit-publisher';
import type { AuditInclusion, AuditTreeHead } from '../ports/audit-proofs';

/** Identifies the receipt layout; bump on any change of meaning. Receipts before it carried `inclusionProof: null`. */
export const ERASURE_RECEIPT_FORMAT = 'sealpost-erasure-receipt/1';
/** JWS `typ` of erasure receipts. */
export const ERASURE_RECEIPT_TYP = 'sealpost-erasure-receipt+jws';
/** Audit action of an erasure; subject token `contact_erase`. */
export const ERASE_AUDIT_ACTION = 'contact.erase';

/** The audit part of a receipt. */
export interface ReceiptAuditProof {
  readonly auditEntry: {
    readonly entryId: string;
    /** base64url canonical entry bytes. */
    readonly canonical: string;
    /** base64url SHA-256(0x00 ‖ canonical). */
    readonly leafHash: string;
  };
  readonly treeHead: AuditTreeHead;
  readonly inclusionProof: {
    readonly leafIndex: number;
    readonly treeSize: number;
    /** base64url, leaf level first. */
    readonly hashes: readonly string[];
  };
}

export interface ErasureReceipt extends ReceiptAuditProof {
  readonly format: typeof ERASURE_RECEIPT_FORMAT;
  readonly iss: 'sealpost/contact-vault';
  readonly tenantId: string;
  readonly contactId: string;
  readonly erasureId: string;
  /** ISO 8601. */
  readonly erasedAt: string;
  readonly auditEventId: string;
  readonly erased: readonly string[];
  readonly kept: readonly { readonly what: string; readonly holds: string }[];
  /** ISO 8601. */
  readonly issuedAt: string;
}

/** Why a receipt does not verify. */
export type ReceiptProblem =
  | 'RECEIPT_SIGNATURE_INVALID' // not signed by a given receipt key (unknown kid, bad signature, wrong typ)
  | 'RECEIPT_MALFORMED' // not a receipt of this format
  | 'RECEIPT_WITHOUT_AUDIT_PROOF' // an older receipt that carried no proof (`inclusionProof: null`)
  | 'TREE_HEAD_SIGNATURE_INVALID' // the tree head is not signed by a given audit key
  | 'TREE_HEAD_MISMATCH' // the tree head's fields (or the proof's size) differ from what its JWS signs
  | 'LEAF_HASH_MISMATCH' // the leaf hash is not SHA-256(0x00 ‖ canonical entry)
  | 'INCLUSION_PROOF_INVALID' // the proof does not lead from the leaf to the signed root
  | 'AUDIT_ENTRY_MISMATCH'; // the proven entry is not this erasure's audit entry

export type ReceiptVerification =
  | {
      readonly ok: true;
      readonly receipt: ErasureReceipt;
      /** Key id of the receipt's signature (the tree head's is `receipt.treeHead.kid`). */
      readonly receiptKid: string;
      /** The decoded audit entry the proof shows. */
      readonly entry: AuditEntry;
    }
  | { readonly ok: false; readonly problem: ReceiptProblem; readonly detail: string };

class Problem extends Error {
  constructor(
    readonly problem: ReceiptProblem,
    detail: string,
  ) {
    super(detail);
  }
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function bytes(value: unknown, what: string): Buffer {
  if (typeof value !== 'string' || !B64URL.test(value))
    throw new Problem('RECEIPT_MALFORMED', `${what} is not base64url`);
  return Buffer.from(value, 'base64url');
}

/** The fields `treeHead.jws` signs, read without checking the signature (the vault holds no audit key). */
function signedTreeHeadFields(jws: string): ReturnType<typeof parseTreeHeadPayload> {
  const parts = jws.split('.');
  if (parts.length !== 3 || !B64URL.test(parts[1] ?? '')) {
    throw new Problem('TREE_HEAD_MISMATCH', 'the tree head JWS is not a compact JWS');
  }
  try {
    return parseTreeHeadPayload(Buffer.from(parts[1]!, 'base64url'));
  } catch (err) {
    if (err instanceof TreeHeadError) throw new Problem('TREE_HEAD_MISMATCH', 'the tree head JWS signs no tree head');
    throw err;
  }
}

/**
 * The checks that need no key: the head's fields are the signed ones, the leaf hash is the entry's, the proof leads
 * to the signed root, and the entry is this erasure's. Throws Problem.
 */
function checkProof(p: {
  canonical: Uint8Array;
  leafHash: Uint8Array;
  leafIndex: number;
  treeSize: number;
  hashes: readonly Uint8Array[];
  treeHead: AuditTreeHead;
  expect: { entryId: string; tenantId: string; contactId: string; erasureId: string };
}): AuditEntry {
  const signed = signedTreeHeadFields(p.treeHead.jws);
  const h = p.treeHead;
  if (
    signed.logId !== h.logId ||
    signed.treeSize !== h.treeSize ||
    signed.rootHash !== h.rootHash ||
    signed.timestamp !== h.timestamp
  ) {
    throw new Problem('TREE_HEAD_MISMATCH', 'the tree head fields differ from the payload its JWS signs');
  }
  if (p.treeSize !== h.treeSize) {
    throw new Problem('TREE_HEAD_MISMATCH', 'the inclusion proof is for another tree size than the signed head');
  }
  if (!hashesEqual(leafHash(p.canonical), p.leafHash)) {
    throw new Problem('LEAF_HASH_MISMATCH', 'the leaf hash is not SHA-256(0x00 ‖ canonical entry)');
  }
  try {
    verifyInclusion(p.leafHash, p.leafIndex, p.treeSize, p.hashes, Buffer.from(h.rootHash, 'hex'));
  } catch (err) {
    if (err instanceof ProofError) {
      throw new Problem('INCLUSION_PROOF_INVALID', `${err.code}: the proof does not lead to the signed root`);
    }
    throw err;
  }
  let entry: AuditEntry;
  try {
    entry = decodeAuditEntry(p.canonical);
  } catch (err) {
    if (err instanceof AuditEntryError) throw new Problem('AUDIT_ENTRY_MISMATCH', 'the entry bytes are not an entry');
    throw err;
  }
  const wrong: string[] = [];
  if (entry.entryId !== p.expect.entryId) wrong.push('entry id');
  if (entry.tenantId !== p.expect.tenantId) wrong.push('tenant');
  if (entry.action !== ERASE_AUDIT_ACTION) wrong.push('action');
  if (entry.outcome !== 'succeeded') wrong.push('outcome');
  if (!entry.resourceIds.includes(p.expect.contactId)) wrong.push('contact id');
  if (!entry.resourceIds.includes(p.expect.erasureId)) wrong.push('erasure id');
  if (wrong.length > 0) {
    throw new Problem('AUDIT_ENTRY_MISMATCH', `the proven entry is not this erasure's (${wrong.join(', ')})`);
  }
  return entry;
}

/**
 * The audit part of a receipt from the entry the vault published and the proof the audit service returned, after
 * checking that the proof shows exactly that entry under the signed head's root (the head's signature is checked
 * by whoever relies on the receipt, with the audit's public key). Throws VaultError AUDIT_PROOF_INVALID.
 */
export function receiptAuditProof(
  published: PublishedAuditEntry,
  inclusion: AuditInclusion,
  erasure: { tenantId: string; contactId: string; erasureId: string },
): ReceiptAuditProof {
  try {
    checkProof({
      canonical: published.canonical,
      leafHash: inclusion.leafHash,
      leafIndex: inclusion.leafIndex,
      treeSize: inclusion.treeHead.treeSize,
      hashes: inclusion.hashes,
      treeHead: inclusion.treeHead,
      expect: { entryId: published.entryId, ...erasure },
    });
  } catch (err) {
    if (err instanceof Problem) {
      throw new VaultError('AUDIT_PROOF_INVALID', `${err.problem}: ${err.message}`, undefined, { cause: err });
    }
    throw err;
  }
  if (inclusion.entryId !== published.entryId) {
    throw new VaultError('AUDIT_PROOF_INVALID', 'the audit service proved another entry');
  }
  const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
  const h = inclusion.treeHead;
  return {
    auditEntry: { entryId: published.entryId, canonical: b64(published.canonical), leafHash: b64(inclusion.leafHash) },
    treeHead: {
      logId: h.logId,
      treeSize: h.treeSize,
      rootHash: h.rootHash,
      timestamp: h.timestamp,
      kid: h.kid,
      jws: h.jws,
    },
    inclusionProof: { leafIndex: inclusion.leafIndex, treeSize: h.treeSize, hashes: inclusion.hashes.map(b64) },
  };
}

/** Public keys of the audit's tree-head signer (`pnpm sealpost audit public-key`). */
export type AuditPublicKeys = Parameters<typeof verifyTreeHeadJws>[1];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function parseReceipt(payload: Buffer): ErasureReceipt {
  let r: unknown;
  try {
    r = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new Problem('RECEIPT_MALFORMED', 'the receipt payload is not JSON');
  }
  if (!isObject(r)) throw new Problem('RECEIPT_MALFORMED', 'the receipt payload is not an object');
  if (r.format === undefined && r.inclusionProof === null) {
    throw new Problem('RECEIPT_WITHOUT_AUDIT_PROOF', 'the receipt predates audit proofs (inclusionProof: null)');
  }
  if (r.format !== ERASURE_RECEIPT_FORMAT)
    throw new Problem('RECEIPT_MALFORMED', `not a ${ERASURE_RECEIPT_FORMAT} receipt`);
  const missing: string[] = [];
  for (const f of ['tenantId', 'contactId', 'erasureId', 'auditEventId', 'erasedAt', 'issuedAt'] as const) {
    if (typeof r[f] !== 'string' || r[f] === '') missing.push(f);
  }
  const entry = r.auditEntry;
  const head = r.treeHead;
  const proof = r.inclusionProof;
  if (!isObject(entry) || typeof entry.entryId !== 'string') missing.push('auditEntry');
  if (
    !isObject(head) ||
    typeof head.logId !== 'string' ||
    !isCount(head.treeSize) ||
    typeof head.rootHash !== 'string' ||
    !isCount(head.timestamp) ||
    typeof head.jws !== 'string' ||
    typeof head.kid !== 'string'
  ) {
    missing.push('treeHead');
  }
  if (!isObject(proof) || !isCount(proof.leafIndex) || !isCount(proof.treeSize) || !Array.isArray(proof.hashes)) {
    missing.push('inclusionProof');
  }
  if (!Array.isArray(r.erased) || !Array.isArray(r.kept)) missing.push('erased/kept');
  if (missing.length > 0) throw new Problem('RECEIPT_MALFORMED', `missing or malformed: ${missing.join(', ')}`);
  return r as unknown as ErasureReceipt;
}

/**
 * Verifies an erasure receipt as a third party would: its JWS with the vault's receipt key(s); the tree head's JWS
 * with the audit's key(s) and its fields against what it signs; the leaf hash from the canonical entry; the
 * inclusion proof up to the signed root (RFC 9162 §2.1.3.2); and that the entry is this erasure's audit entry.
 * Never throws for a bad receipt: the result names the first problem.
 */
export async function verifyErasureReceipt(
  jws: string,
  keys: { readonly receipt: readonly PublicJwk[]; readonly audit: AuditPublicKeys },
): Promise<ReceiptVerification> {
  try {
    let payload: Buffer;
    let receiptKid: string;
    try {
      const out = verifyCompactJws(jws.trim(), keys.receipt, { typ: ERASURE_RECEIPT_TYP });
      payload = out.payload;
      receiptKid = out.header.kid;
    } catch {
      throw new Problem('RECEIPT_SIGNATURE_INVALID', 'the receipt JWS does not verify with the given receipt key(s)');
    }
    const receipt = parseReceipt(payload);
    try {
      await verifyTreeHeadJws(receipt.treeHead, keys.audit);
    } catch (err) {
      if (!(err instanceof TreeHeadSignatureError)) throw err;
      throw err.code === 'STH_PAYLOAD_MISMATCH'
        ? new Problem('TREE_HEAD_MISMATCH', 'the tree head fields differ from the payload its JWS signs')
        : new Problem('TREE_HEAD_SIGNATURE_INVALID', 'the tree head JWS does not verify with the given audit key(s)');
    }
    const proof = receipt.inclusionProof;
    const hashes = proof.hashes.map((h, i) => bytes(h, `inclusionProof.hashes[${i}]`));
    const entry = checkProof({
      canonical: bytes(receipt.auditEntry.canonical, 'auditEntry.canonical'),
      leafHash: bytes(receipt.auditEntry.leafHash, 'auditEntry.leafHash'),
      leafIndex: proof.leafIndex,
      treeSize: proof.treeSize,
      hashes,
      treeHead: receipt.treeHead,
      expect: {
        entryId: receipt.auditEventId,
        tenantId: receipt.tenantId,
        contactId: receipt.contactId,
        erasureId: receipt.erasureId,
      },
    });
    if (receipt.auditEntry.entryId !== receipt.auditEventId) {
      throw new Problem('AUDIT_ENTRY_MISMATCH', 'auditEntry.entryId differs from auditEventId');
    }
    return { ok: true, receipt, receiptKid, entry };
  } catch (err) {
    if (err instanceof Problem) return { ok: false, problem: err.problem, detail: err.message };
    throw err;
  }
}
