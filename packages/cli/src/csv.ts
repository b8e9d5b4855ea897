/**
 * Contact CSV files for `contacts import`: RFC 4180 records (quoted fields, CRLF or LF), strict UTF-8, a header
 * naming `email` and/or `phone` (+ optional `name`). Errors name the row, never a value.
 */

/** Columns a contact CSV may hold. */
export const CSV_COLUMNS = ['email', 'phone', 'name'] as const;
export type CsvColumn = (typeof CSV_COLUMNS)[number];

/** A CSV that cannot be imported as a whole; nothing is sent. */
export class CsvError extends Error {
  override readonly name = 'CsvError';
  readonly code = 'CSV_INVALID';
}

/** One data row; `row` counts as a spreadsheet does (the header is row 1, the first data row is row 2). */
export interface CsvContactRow {
  readonly row: number;
  readonly email: string;
  readonly phone: string;
  readonly name: string;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Splits the bytes into records of fields; quoted fields may hold commas, quotes ("") and line breaks. */
function* records(bytes: Buffer): Generator<{ fields: string[]; start: number; end: number }> {
  let i = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0; // UTF-8 BOM
  const n = bytes.length;
  while (i < n) {
    const start = i;
    const fields: string[] = [];
    const parts: Buffer[] = [];
    let fieldStart = i;
    let quoted = false;
    let closed = false;
    for (;;) {
      if (i >= n) {
        if (quoted && !closed) throw new CsvError('unterminated quoted field', { cause: { start } });
        parts.push(bytes.subarray(fieldStart, i));
        fields.push(Buffer.concat(parts).toString('latin1'));
        break;
      }
      const b = bytes[i]!;
      if (quoted && !closed) {
        if (b === 0x22) {
          if (bytes[i + 1] === 0x22) {
            parts.push(bytes.subarray(fieldStart, i + 1));
            i += 2;
            fieldStart = i;
            continue;
          }
          parts.push(bytes.subarray(fieldStart, i));
          closed = true;
          i++;
          fieldStart = i;
          continue;
        }
        i++;
        continue;
      }
      if (b === 0x22 && i === fieldStart && parts.length === 0 && !quoted) {
        quoted = true;
        i++;
        fieldStart = i;
        continue;
      }
      if (b === 0x2c || b === 0x0a || b === 0x0d) {
        parts.push(bytes.subarray(fieldStart, i));
        fields.push(Buffer.concat(parts).toString('latin1'));
        parts.length = 0;
        quoted = false;
        closed = false;
        if (b === 0x2c) {
          i++;
          fieldStart = i;
          continue;
        }
        i += b === 0x0d && bytes[i + 1] === 0x0a ? 2 : 1;
        break;
      }
      if (closed) throw new CsvError('text after a closing quote', { cause: { start } });
      i++;
    }
    yield { fields, start, end: i };
  }
}

/** Decodes one field's bytes (kept as latin1 while splitting) as strict UTF-8. */
function utf8(latin1: string): string {
  return decoder.decode(Buffer.from(latin1, 'latin1'));
}

/**
 * Parses and validates a whole contact CSV. Throws CsvError naming the row for: a header without `email`/`phone`,
 * unknown or repeated columns, a row with another number of fields than the header, broken UTF-8, broken quoting.
 * Blank lines are skipped. Field values are passed on as they are: the vault validates and normalises them.
 */
export function parseContactCsv(bytes: Buffer): CsvContactRow[] {
  let row = 0;
  let columns: CsvColumn[] | undefined;
  const out: CsvContactRow[] = [];
  const iter = records(bytes);
  for (;;) {
    let next;
    try {
      next = iter.next();
    } catch (err) {
      throw new CsvError(`row ${row + 1}: ${(err as Error).message}`);
    }
    if (next.done) break;
    row++;
    const raw = next.value.fields;
    if (raw.length === 1 && raw[0] === '') {
      if (!columns) throw new CsvError('row 1: the header is empty; expected columns email and/or phone (+ name)');
      continue;
    }
    let fields: string[];
    try {
      fields = raw.map(utf8);
    } catch {
      throw new CsvError(`row ${row}: not valid UTF-8 text (save the file as UTF-8)`);
    }
    if (!columns) {
      const names = fields.map((f) => f.trim().toLowerCase());
      const unknown = names.filter((c) => !(CSV_COLUMNS as readonly string[]).includes(c));
      if (unknown.length > 0) {
        throw new CsvError(
          `row 1: unknown column${unknown.length > 1 ? 's' : ''} ${unknown.map((c) => JSON.stringify(c.slice(0, 40))).join(', ')}; ` +
            'expected email and/or phone (+ optional name)',
        );
      }
      if (new Set(names).size !== names.length) throw new CsvError('row 1: a column is named twice');
      if (!names.includes('email') && !names.includes('phone')) {
        throw new CsvError('row 1: the header needs an email or a phone column (+ optional name)');
      }
      columns = names as CsvColumn[];
      continue;
    }
    if (fields.length !== columns.length) {
      throw new CsvError(`row ${row}: ${fields.length} fields, but the header has ${columns.length} columns`);
    }
    const values: Record<CsvColumn, string> = { email: '', phone: '', name: '' };
    columns.forEach((c, k) => (values[c] = fields[k]!));
    out.push({ row, ...values });
  }
  if (!columns) throw new CsvError('row 1: the file is empty; expected a header with email and/or phone');
  return out;
}
