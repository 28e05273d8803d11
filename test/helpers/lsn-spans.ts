import { expect } from 'vitest';
import { RecordKind } from '../../src/format/constants.js';

/** A record as readWal yields it, or as `segwal dump` prints it (kind by name). */
interface SpannedRecord {
  kind: RecordKind | string;
  lsn: number;
  txBeginLsn: number;
}

/** The LSNs a record spans: a Commit record (a whole transaction in one frame) its begin LSN to its own, every other record its own. */
export function lsnSpan(record: SpannedRecord): [first: number, last: number] {
  const commit = record.kind === RecordKind.Commit || record.kind === 'Commit';
  return [commit ? record.txBeginLsn : record.lsn, record.lsn];
}

/**
 * Dense LSNs (docs/FORMAT.md): each record's first LSN is one above the
 * previous record's last; the first record's span holds `from` (null: the
 * records may start anywhere, as a truncated log does).
 */
export function expectDense(records: readonly SpannedRecord[], from: number | null = 1): void {
  expect(records.length).toBeGreaterThan(0);
  const [first, last] = lsnSpan(records[0]!);
  if (from !== null) expect(first <= from && from <= last, `the first record spans ${first}..${last}, not ${from}`).toBe(true);
  for (let i = 1; i < records.length; i++) {
    expect(lsnSpan(records[i]!)[0], `record ${i}`).toBe(records[i - 1]!.lsn + 1);
  }
}
