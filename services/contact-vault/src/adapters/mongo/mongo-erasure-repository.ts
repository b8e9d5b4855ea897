import type { BlindIndexFieldKind } from '@sealpost/crypto';
import type { Collection, Db } from 'mongodb';
import type { ErasureLedgerEntry, ErasureRepository, SuppressionTombstone } from '../../ports/erasure-repository';
import { ERASURE_LEDGER, SUPPRESSION_TOMBSTONES, isDuplicateKey } from './mongo-contact-store';

interface LedgerDoc {
  _id: string;
  tenantId: string;
  contactId: string;
  erasedAt: Date;
}

interface SuppressionDoc {
  _id: string;
  tenantId: string;
  fieldKind: string;
  normVersion: number;
  value: string;
  erasureId: string;
  createdAt: Date;
}

const suppressionId = (tenantId: string, fieldKind: string, normVersion: number, value: string): string =>
  `${tenantId}/${fieldKind}/${normVersion}/${value}`;

/** `ErasureRepository` on MongoDB: ledger entries and suppression tombstones as their own documents. */
export class MongoErasureRepository implements ErasureRepository {
  private readonly ledgerDocs: Collection<LedgerDoc>;
  private readonly suppression: Collection<SuppressionDoc>;

  constructor(db: Db) {
    this.ledgerDocs = db.collection<LedgerDoc>(ERASURE_LEDGER);
    this.suppression = db.collection<SuppressionDoc>(SUPPRESSION_TOMBSTONES);
  }

  async appendLedger(e: ErasureLedgerEntry): Promise<void> {
    try {
      await this.ledgerDocs.insertOne({
        _id: e.erasureId,
        tenantId: e.tenantId,
        contactId: e.contactId,
        erasedAt: e.erasedAt,
      });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
  }

  async ledger(options: { after?: string; limit: number }): Promise<ErasureLedgerEntry[]> {
    const docs = await this.ledgerDocs
      .find({ _id: { $gt: options.after ?? '' } })
      .sort({ _id: 1 })
      .limit(options.limit)
      .toArray();
    return docs.map((d) => ({ erasureId: d._id, tenantId: d.tenantId, contactId: d.contactId, erasedAt: d.erasedAt }));
  }

  async putSuppression(t: SuppressionTombstone): Promise<void> {
    try {
      await this.suppression.insertOne({
        _id: suppressionId(t.tenantId, t.fieldKind, t.normVersion, t.value),
        tenantId: t.tenantId,
        fieldKind: t.fieldKind,
        normVersion: t.normVersion,
        value: t.value,
        erasureId: t.erasureId,
        createdAt: t.createdAt,
      });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
  }

  async isSuppressed(
    tenantId: string,
    fieldKind: BlindIndexFieldKind,
    normVersion: number,
    value: string,
  ): Promise<boolean> {
    return (await this.suppression.countDocuments({ _id: suppressionId(tenantId, fieldKind, normVersion, value) })) > 0;
  }
}
