import { count, describeDamage, formatTable } from './report.js';
import { readLogIdentity, scanLog } from './scan-log.js';
import { EXIT_DAMAGE, EXIT_OK, type Command } from './usage.js';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'one row per segment, and the totals',
  help: `segwal inspect <dir> [--json]

The log's identity (its log id; whether it is a replica), then one row per segment: id, base LSN,
last LSN, records, bytes (file size), sealed, the preallocated tail (zero
bytes after the data), and its state (sealed, active, torn tail, unfinished
header, damaged); then the totals.
Exits 1 when a segment is damaged (see segwal verify). Read-only: takes no
lock, changes no file; works while a Wal writes the log.
  --json   machine-readable output`,
  options: { json: { type: 'boolean' } },
  async run(dir, values, out) {
    const scan = await scanLog(dir);
    const identity = await readLogIdentity(dir);
    const { logId } = identity;
    // A damaged identity file is what open refuses first, so it is problem 1.
    const allProblems = [...identity.problems, ...scan.problems];
    const rows = scan.segments.map((segment) => ({
      id: segment.id,
      file: segment.file,
      baseLsn: segment.header?.baseLsn ?? null,
      lastLsn: segment.lastLsn,
      records: segment.records,
      bytes: segment.fileBytes,
      sealed: segment.header?.sealed ?? null,
      replica: segment.header?.replica ?? null,
      // Zeros after the data: the unwritten rest of a preallocated segment (null when the scan did not reach the end).
      preallocatedTail: segment.scanned === null ? null : segment.fileBytes - segment.scanned.dataEnd - (segment.scanned.tornTail?.discardedBytes ?? 0),
      state: segment.state,
      tornTail: segment.scanned?.tornTail ?? null,
    }));
    const totals = {
      segments: rows.length,
      records: rows.reduce((sum, row) => sum + row.records, 0),
      bytes: rows.reduce((sum, row) => sum + row.bytes, 0),
      preallocatedTail: rows.reduce((sum, row) => sum + (row.preallocatedTail ?? 0), 0),
    };
    const problems = allProblems.map(describeDamage);
    if (values.json === true) {
      await out.stdout(`${JSON.stringify({ dir, logId, segments: rows, totals, problems }, null, 2)}\n`);
    } else {
      const cell = (value: unknown) => (value === null ? '-' : typeof value === 'boolean' ? (value ? 'yes' : 'no') : String(value));
      const replica = rows.at(-1)?.replica === true ? ' (a replica: Wal.open takes it with replica: true; without, it is promoted)' : '';
      const id = identity.problems.length > 0 ? '(damaged: see problem 1)' : (logId ?? '(none yet: open gives the log one)');
      await out.stdout(`log id ${id}${replica}\n\n`);
      await out.stdout(
        formatTable(
          ['segment', 'base LSN', 'last LSN', 'records', 'bytes', 'sealed', 'prealloc tail', 'state'],
          [
            ...rows.map((row) => [row.id, row.baseLsn, row.lastLsn, row.records, row.bytes, row.sealed, row.preallocatedTail, row.state].map(cell)),
            ['total', '', '', totals.records, totals.bytes, '', totals.preallocatedTail, count(totals.segments, 'segment')].map(cell),
          ],
        ),
      );
      for (const row of rows) {
        if (row.tornTail !== null) await out.stdout(`\nsegment ${row.id}: torn tail at offset ${row.tornTail.offset} (${count(row.tornTail.discardedBytes, 'byte')}): ${row.tornTail.cause}\n`);
      }
      for (const [index, problem] of allProblems.entries()) await out.stdout(`\nproblem ${index + 1}: ${problem.message}\n`);
    }
    return allProblems.length === 0 ? EXIT_OK : EXIT_DAMAGE;
  },
};
