import { HEADER_BYTES } from '../format/constants.js';
import { describeDamage } from './report.js';
import { scanLog, type LogScan, type SegmentSummary } from './scan-log.js';
import { EXIT_DAMAGE, EXIT_OK, type Command } from './usage.js';

/**
 * For each damaged segment, where the counts stop and go on, then the problem:
 * the scan reads nothing after damage in a segment and resumes at the next one,
 * so the counts above leave out the rest of that segment.
 */
function whereCountingStopped(scan: LogScan): string[] {
  return scan.segments.flatMap((segment, index) => {
    if (segment.problem === null) return [];
    const { offset } = segment.problem;
    const next = scan.segments[index + 1];
    const resume = next === undefined ? '' : ` and resume at segment ${next.id}`;
    return [
      `stopped at    damage in segment ${segment.id}${offset === undefined ? '' : `, offset ${offset}`}: the counts leave out the rest of segment ${segment.id}${resume}`,
      `problem       ${segment.problem.message}`,
    ];
  });
}

/** Bytes of the frames counted in `segment`: up to the end of its data, or up to the damage. */
function countedFrameBytes(segment: SegmentSummary): number {
  const end = segment.scanned?.dataEnd ?? segment.problem?.offset ?? HEADER_BYTES;
  return Math.max(0, end - HEADER_BYTES);
}

export const statsCommand: Command = {
  name: 'stats',
  summary: 'records by kind, transactions, bytes, LSN range',
  help: `segwal stats <dir> [--json]

Records by kind, events, transactions committed / aborted / open at the end of
the log, bytes on disk and in records, the LSN range, and the oldest and
newest segment. Exits 1 when a segment is damaged: the counts then stop at the
damage and resume at the next segment, and say so. Read-only; works while a
Wal writes the log.
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
      transactions: {
        committed: (byKind.TxCommit ?? 0) + (byKind.Commit ?? 0) + (byKind.Replicated ?? 0),
        aborted: byKind.TxAbort ?? 0,
        openAtEnd,
      },
      bytes: {
        onDisk: scan.segments.reduce((sum, segment) => sum + segment.fileBytes, 0),
        inRecords: scan.segments.reduce((sum, segment) => sum + countedFrameBytes(segment), 0),
      },
      lsnRange: firstLsn === null ? null : { first: firstLsn, last: lastLsn },
      segments: { count: scan.segments.length, oldest: scan.segments[0]?.id ?? null, newest: scan.segments.at(-1)?.id ?? null },
      problems: scan.problems.map(describeDamage),
    };
    if (values.json === true) {
      await out.stdout(`${JSON.stringify(stats, null, 2)}\n`);
    } else {
      // The kinds the log holds (a replica's Replicated records, a primary's others); --json lists every kind.
      const kinds = Object.entries(byKind)
        .filter(([, count]) => count > 0)
        .map(([name, count]) => `${name} ${count}`)
        .join(', ');
      await out.stdout(
        [
          `records       ${stats.records}${kinds === '' ? '' : ` (${kinds})`}`,
          `events        ${events}`,
          `transactions  ${stats.transactions.committed} committed, ${stats.transactions.aborted} aborted, ${openAtEnd ?? '?'} open at end`,
          `bytes         ${stats.bytes.onDisk} on disk, ${stats.bytes.inRecords} in records`,
          `LSN range     ${stats.lsnRange === null ? '(empty)' : `${stats.lsnRange.first}..${stats.lsnRange.last}`}`,
          `segments      ${stats.segments.count} (oldest ${stats.segments.oldest ?? '-'}, newest ${stats.segments.newest ?? '-'})`,
          ...whereCountingStopped(scan),
          '',
        ].join('\n'),
      );
    }
    return scan.problems.length === 0 ? EXIT_OK : EXIT_DAMAGE;
  },
};
