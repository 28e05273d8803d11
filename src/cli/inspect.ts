import { describeDamage, formatTable } from './report.js';
import { scanLog } from './scan-log.js';
import { EXIT_DAMAGE, EXIT_OK, type Command } from './usage.js';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'one row per segment, and the totals',
  help: `segwal inspect <dir> [--json]

One row per segment: id, base LSN, last LSN, records, bytes (file size),
sealed, and the preallocated tail (zero bytes after the data); then totals.
Read-only: takes no lock, changes no file; works while a Wal writes the log.
  --json   machine-readable output`,
  options: { json: { type: 'boolean' } },
  async run(dir, values, out) {
    const scan = await scanLog(dir);
    const rows = scan.segments.map(({ id, file, scanned }) => ({
      id,
      file,
      baseLsn: scanned?.baseLsn ?? null,
      lastLsn: scanned === null || scanned.records === 0 ? null : scanned.lastLsn,
      records: scanned?.records ?? 0,
      bytes: scanned?.fileBytes ?? null,
      sealed: scanned?.sealed ?? false,
      preallocatedTail: scanned === null ? null : scanned.fileBytes - scanned.dataEnd - (scanned.tornTail?.discardedBytes ?? 0),
      tornTail: scanned?.tornTail ?? null,
      state: scanned === null ? 'unfinished header' : scanned.tornTail !== null ? 'torn tail' : scanned.sealed ? 'sealed' : 'active',
    }));
    const totals = {
      segments: rows.length,
      records: rows.reduce((sum, row) => sum + row.records, 0),
      bytes: rows.reduce((sum, row) => sum + (row.bytes ?? 0), 0),
      preallocatedTail: rows.reduce((sum, row) => sum + (row.preallocatedTail ?? 0), 0),
    };
    if (values.json === true) {
      out.stdout(`${JSON.stringify({ dir, segments: rows, totals, damage: scan.damage === null ? null : describeDamage(scan.damage) }, null, 2)}\n`);
    } else {
      const cell = (value: unknown) => (value === null ? '-' : String(value));
      out.stdout(
        formatTable(
          ['segment', 'base LSN', 'last LSN', 'records', 'bytes', 'sealed', 'prealloc tail', 'state'],
          [
            ...rows.map((row) => [row.id, row.baseLsn, row.lastLsn, row.records, row.bytes, row.sealed ? 'yes' : 'no', row.preallocatedTail, row.state].map(cell)),
            ['total', '', '', totals.records, totals.bytes, '', totals.preallocatedTail, `${totals.segments} segments`].map(cell),
          ],
        ),
      );
      if (scan.damage !== null) out.stdout(`\ndamage: ${scan.damage.message}\n`);
    }
    return scan.damage === null ? EXIT_OK : EXIT_DAMAGE;
  },
};
