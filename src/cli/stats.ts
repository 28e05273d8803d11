import { HEADER_BYTES } from '../format/constants.js';
import { describeDamage } from './report.js';
import { scanLog } from './scan-log.js';
import { EXIT_DAMAGE, EXIT_OK, type Command } from './usage.js';

export const statsCommand: Command = {
  name: 'stats',
  summary: 'records by kind, transactions, bytes, LSN range',
  help: `segwal stats <dir> [--json]

Records by kind, events, transactions committed / aborted / open at the end of
the log, bytes on disk and in records, the LSN range, and the oldest and
newest segment. Exits 1 when a segment is damaged (the counts then cover the
records that passed the checks). Read-only; works while a Wal writes the log.
  --json   machine-readable output`,
  options: { json: { type: 'boolean' } },
  async run(dir, values, out) {
    const scan = await scanLog(dir);
    const { byKind, events, firstLsn, lastLsn, openAtEnd } = scan.tally;
    const stats = {
      dir,
      records: Object.values(byKind).reduce((sum, count) => sum + count, 0),
      recordsByKind: byKind,
      events,
      transactions: { committed: (byKind.TxCommit ?? 0) + (byKind.Commit ?? 0), aborted: byKind.TxAbort ?? 0, openAtEnd },
      bytes: {
        onDisk: scan.segments.reduce((sum, segment) => sum + segment.fileBytes, 0),
        inRecords: scan.segments.reduce((sum, segment) => sum + (segment.scanned === null ? 0 : segment.scanned.dataEnd - HEADER_BYTES), 0),
      },
      lsnRange: firstLsn === null ? null : { first: firstLsn, last: lastLsn },
      segments: { count: scan.segments.length, oldest: scan.segments[0]?.id ?? null, newest: scan.segments.at(-1)?.id ?? null },
      problems: scan.problems.map(describeDamage),
    };
    if (values.json === true) {
      await out.stdout(`${JSON.stringify(stats, null, 2)}\n`);
    } else {
      const kinds = Object.entries(byKind).map(([name, count]) => `${name} ${count}`).join(', ');
      await out.stdout(
        [
          `records       ${stats.records} (${kinds})`,
          `events        ${events}`,
          `transactions  ${stats.transactions.committed} committed, ${stats.transactions.aborted} aborted, ${openAtEnd ?? '?'} open at end`,
          `bytes         ${stats.bytes.onDisk} on disk, ${stats.bytes.inRecords} in records`,
          `LSN range     ${stats.lsnRange === null ? '(empty)' : `${stats.lsnRange.first}..${stats.lsnRange.last}`}`,
          `segments      ${stats.segments.count} (oldest ${stats.segments.oldest ?? '-'}, newest ${stats.segments.newest ?? '-'})`,
          ...scan.problems.map((problem) => `damage        ${problem.message}`),
          '',
        ].join('\n'),
      );
    }
    return scan.problems.length === 0 ? EXIT_OK : EXIT_DAMAGE;
  },
};
