import { describeDamage } from './report.js';
import { lastCheckpointFence, scanLog } from './scan-log.js';
import { EXIT_DAMAGE, EXIT_OK, lsnOption, type Command, type Output } from './usage.js';

const PROGRESS_AFTER_MS = 1000;

/** A one-line progress bar on stderr, shown only on a TTY and only once a run takes over a second. */
function progressBar(out: Output): { update(index: number, count: number): void; done(): void } {
  const started = Date.now();
  let shown = false;
  return {
    update(index, count) {
      if (!out.stderrIsTty || Date.now() - started < PROGRESS_AFTER_MS) return;
      const width = 30;
      const filled = Math.round((index / Math.max(1, count)) * width);
      out.stderr(`\rverifying [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] segment ${index + 1}/${count}`);
      shown = true;
    },
    done() {
      if (shown) out.stderr('\r\x1b[K');
    },
  };
}

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'check every CRC, header, LSN and transaction as open would',
  help: `segwal verify <dir> [--checkpoint-lsn LSN] [--json]

Runs the checks Wal.open runs (the same scanner): every header and frame CRC,
the dense LSN order across segments, and the transaction structure. Exits 1
with the file, offset and LSN of the first problem open would refuse; a torn
tail in the last segment (what open cuts) is reported but exits 0.
  --checkpoint-lsn LSN  the fence a reopen would pass (default: the snapshot
                        LSN of the last Checkpoint record in the log)
  --json                machine-readable output`,
  options: { 'checkpoint-lsn': { type: 'string' }, json: { type: 'boolean' } },
  async run(dir, values, out) {
    const fence = lsnOption(values, 'checkpoint-lsn') ?? (await lastCheckpointFence(dir));
    const bar = progressBar(out);
    const scan = await scanLog(dir, { checkpointLsn: fence, onSegment: (index, count) => bar.update(index, count) });
    bar.done();
    const last = scan.segments.at(-1)?.scanned ?? null;
    const result = {
      dir,
      checkpointLsn: fence,
      ok: scan.damage === null,
      segments: scan.segments.length,
      maxLsn: scan.totals?.maxLsn ?? null,
      tornTail: last?.tornTail ?? null,
      unfinishedLastSegment: scan.segments.length > 0 && scan.segments.at(-1)?.scanned === null,
      damage: scan.damage === null ? null : describeDamage(scan.damage),
    };
    if (values.json === true) {
      out.stdout(`${JSON.stringify(result, null, 2)}\n`);
    } else if (scan.damage !== null) {
      const { file, offset, lsn, code } = result.damage!;
      out.stdout(`DAMAGED: ${scan.damage.message}\n  code   ${code}\n  file   ${file ?? '-'}\n  offset ${offset ?? '-'}\n  LSN    ${lsn ?? '-'}\n`);
    } else {
      out.stdout(`ok: ${result.segments} segments, LSN 1..${result.maxLsn} checked against fence ${fence}\n`);
      if (result.tornTail !== null) {
        const tail = result.tornTail;
        out.stdout(`torn tail in segment ${tail.segmentId} at offset ${tail.offset} (${tail.discardedBytes} bytes): ${tail.cause}; open would cut it\n`);
      }
      if (result.unfinishedLastSegment) out.stdout('the last segment has an unfinished header and no record; open would replace it\n');
    }
    return scan.damage === null ? EXIT_OK : EXIT_DAMAGE;
  },
};
