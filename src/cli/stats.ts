import { MAX_LSN, RECORD_KIND_NAMES, RecordKind } from '../format/constants.js';
import { batchEvents } from '../format/frame.js';
import { describeDamage } from './report.js';
import { scanLog } from './scan-log.js';
import { EXIT_DAMAGE, EXIT_OK, type Command } from './usage.js';

export const statsCommand: Command = {
  name: 'stats',
  summary: 'records by kind, transactions, bytes, LSN range',
  help: `segwal stats <dir> [--json]

Records by kind, events, transactions committed / aborted / open at the end of
the log, bytes on disk and in records, the LSN range, and the oldest and
newest segment. Read-only; works while a Wal writes the log.
  --json   machine-readable output`,
  options: { json: { type: 'boolean' } },
  async run(dir, values, out) {
    const byKind = Object.fromEntries(Object.values(RECORD_KIND_NAMES).map((name) => [name, 0])) as Record<string, number>;
    let events = 0;
    let firstLsn: number | null = null;
    // No fence: counting only; records whose TxBegin was truncated away are still counted.
    const scan = await scanLog(dir, {
      checkpointLsn: MAX_LSN,
      onRecord: (record) => {
        firstLsn ??= record.lsn;
        byKind[RECORD_KIND_NAMES[record.kind]]! += 1;
        if (record.kind === RecordKind.Mutation) events += 1;
        if (record.kind === RecordKind.MutationBatch) events += batchEvents(record.payload).length;
      },
    });
    const scanned = scan.segments.flatMap((segment) => (segment.scanned === null ? [] : [segment.scanned]));
    const stats = {
      dir,
      records: Object.values(byKind).reduce((sum, count) => sum + count, 0),
      recordsByKind: byKind,
      events,
      transactions: {
        committed: byKind.TxCommit,
        aborted: byKind.TxAbort,
        openAtEnd: scan.totals?.incompleteTransactions ?? null,
      },
      bytes: {
        onDisk: scanned.reduce((sum, segment) => sum + segment.fileBytes, 0),
        inRecords: scanned.reduce((sum, segment) => sum + segment.dataEnd - 32, 0),
      },
      lsnRange: firstLsn === null ? null : { first: firstLsn, last: scan.totals?.maxLsn ?? null },
      segments: { count: scan.segments.length, oldest: scan.segments[0]?.id ?? null, newest: scan.segments.at(-1)?.id ?? null },
      damage: scan.damage === null ? null : describeDamage(scan.damage),
    };
    if (values.json === true) {
      out.stdout(`${JSON.stringify(stats, null, 2)}\n`);
    } else {
      const kinds = Object.entries(byKind).map(([name, count]) => `${name} ${count}`).join(', ');
      out.stdout(
        [
          `records       ${stats.records} (${kinds})`,
          `events        ${events}`,
          `transactions  ${stats.transactions.committed} committed, ${stats.transactions.aborted} aborted, ${stats.transactions.openAtEnd ?? '?'} open at end`,
          `bytes         ${stats.bytes.onDisk} on disk, ${stats.bytes.inRecords} in records`,
          `LSN range     ${stats.lsnRange === null ? '(empty)' : `${stats.lsnRange.first}..${stats.lsnRange.last}`}`,
          `segments      ${stats.segments.count} (oldest ${stats.segments.oldest ?? '-'}, newest ${stats.segments.newest ?? '-'})`,
          ...(scan.damage === null ? [] : [`damage        ${scan.damage.message}`]),
          '',
        ].join('\n'),
      );
    }
    return scan.damage === null ? EXIT_OK : EXIT_DAMAGE;
  },
};
