/**
 * A large contact CSV with duplicates and bad rows whose import summary is known exactly (shared by the scale test
 * and `pnpm bench vault`). In every block of 20 data rows: 16 new contacts, 1 exact duplicate (unchanged), 1 rename
 * of an earlier contact (updated), 1 invalid email (rejected INVALID_ARGUMENT email), 1 new email carrying an
 * earlier contact's phone (rejected DEDUPE_CONFLICT phone).
 */
export interface ExpectedSummary {
  rows: number;
  created: number;
  updated: number;
  unchanged: number;
  rejected: number;
  rejectedByReason: Record<string, number>;
}

const email = (i: number): string => `user${i}@example.com`;
const phone = (i: number): string => `+447911${String(i).padStart(6, '0')}`;

/** The CSV text (header + `rows` data rows; `rows` must be a multiple of 20) and its exact expected summary. */
export function scaleCsv(rows: number): { csv: string; expected: ExpectedSummary } {
  if (rows % 20 !== 0 || rows > 999_980) throw new RangeError('rows must be a multiple of 20, below 1M');
  const lines = ['email,phone,name'];
  for (let i = 0; i < rows; i++) {
    const base = i - (i % 20); // the block's first row: always a valid new contact
    switch (i % 20) {
      case 16:
        lines.push(`${email(base)},${phone(base)},User ${base}`);
        break;
      case 17:
        lines.push(`${email(base)},${phone(base)},"User ${base}, renamed"`);
        break;
      case 18:
        lines.push(`not-an-email-${i},,Broken ${i}`);
        break;
      case 19:
        lines.push(`${email(i)},${phone(base)},Clash ${i}`);
        break;
      default:
        lines.push(`${email(i)},${phone(i)},User ${i}`);
    }
  }
  const blocks = rows / 20;
  return {
    csv: `${lines.join('\n')}\n`,
    expected: {
      rows,
      created: 16 * blocks,
      updated: blocks,
      unchanged: blocks,
      rejected: 2 * blocks,
      rejectedByReason: { 'INVALID_ARGUMENT email': blocks, 'DEDUPE_CONFLICT phone': blocks },
    },
  };
}
