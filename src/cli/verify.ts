import type { WalError } from '../errors.js';
import { count, describeDamage } from './report.js';
import { readLogIdentity, refusedBelowFence, scanLog } from './scan-log.js';
import { EXIT_DAMAGE, EXIT_OK, UsageError, lsnOption, type Command, type Output } from './usage.js';

const PROGRESS_AFTER_MS = 1000;
const PROGRESS_EVERY_MS = 100;

/** A one-line progress bar on stderr: only on a TTY, and only once the run has taken a second. */
function progressBar(out: Output): { update(index: number, count: number): void; done(): void } {
  if (!out.stderrIsTty) return { update() {}, done() {} };
  let state = { index: 0, count: 0 };
  let shown = false;
  const draw = () => {
    const width = 30;
    const filled = Math.round((state.index / Math.max(1, state.count)) * width);
    out.stderr(`\rverifying [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] segment ${Math.min(state.index + 1, state.count)}/${state.count}`);
    shown = true;
  };
  let interval: NodeJS.Timeout | undefined;
  const delay = setTimeout(() => {
    draw();
    interval = setInterval(draw, PROGRESS_EVERY_MS);
    interval.unref();
  }, PROGRESS_AFTER_MS);
  delay.unref();
  return {
    update(index, count) {
      state = { index, count };
    },
    done() {
      clearTimeout(delay);
      clearInterval(interval);
      if (shown) out.stderr('\r\x1b[K');
    },
  };
}

/** Log order: segment files sort by name, then by offset. */
function byPosition(a: WalError, b: WalError): number {
  return (a.file ?? '').localeCompare(b.file ?? '') || (a.offset ?? 0) - (b.offset ?? 0);
}

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'check every CRC, header, LSN and transaction as open would',
  help: `segwal verify <dir> [--checkpoint-lsn LSN|marker] [--json]

Runs the checks Wal.open runs, with the same scanner: every header and frame
CRC, the dense LSN order within and across segments, and the transaction
structure. Exits 1 listing each problem with its file, offset and LSN; the
first is the one open would refuse the log for. After a damaged segment the
check resumes at the next segment, so later damage is listed too (checks that
span the damaged segment are not made). A torn tail in the last segment is
what open cuts (a Wal writing right now leaves one too): reported, exit 0.
On a TTY, a progress bar shows on stderr once the run takes over a second.
  --checkpoint-lsn LSN  the fence open would be given; at most the last LSN
                        of a log with records, as open refuses a fence beyond
                        it. marker (the default): the snapshot LSN of the last
                        Checkpoint record, what Wal.open uses by default
  --json                machine-readable output`,
  options: { 'checkpoint-lsn': { type: 'string' }, json: { type: 'boolean' } },
  async run(dir, values, out) {
    const fenceOption = lsnOption(values, 'checkpoint-lsn', 0, ['marker']);
    const bar = progressBar(out);
    let scan;
    try {
      scan = await scanLog(dir, { onSegment: (index, count) => bar.update(index, count) });
    } finally {
      bar.done();
    }
    const { firstLsn, lastLsn } = scan.tally;
    if (typeof fenceOption === 'number' && lastLsn !== null && fenceOption > lastLsn) {
      // What Wal.open refuses (docs/DURABILITY.md, "A fence beyond the end of the log"); an empty log takes any fence.
      throw new UsageError(
        `--checkpoint-lsn ${fenceOption} is beyond the end of the log (its last LSN is ${lastLsn}): open refuses that fence, ` +
          `since a reopen with it would not replay the next commit (LSN ${lastLsn + 1}); give the fence of the snapshot this log continues`,
      );
    }
    const fence = typeof fenceOption === 'number' ? fenceOption : scan.tally.lastCheckpointSnapshot;
    // Open reads the identity file before any segment: a damaged one is the first problem it reports.
    const identity = await readLogIdentity(dir);
    const problems = [...identity.problems, ...[...scan.problems, ...refusedBelowFence(scan, fence)].sort(byPosition)];
    const last = scan.segments.at(-1);
    const result = {
      dir,
      checkpointLsn: fence,
      ok: problems.length === 0,
      segments: scan.segments.length,
      records: scan.segments.reduce((sum, segment) => sum + segment.records, 0),
      lsnRange: firstLsn === null ? null : { first: firstLsn, last: lastLsn },
      tornTail: last?.scanned?.tornTail ?? null,
      unfinishedLastSegment: last?.state === 'unfinished header',
      /** Records of transactions whose TxBegin was truncated away, accepted because the fence covers them. */
      coveredByFence: scan.covered.length - refusedBelowFence(scan, fence).length,
      problems: problems.map(describeDamage),
    };
    if (values.json === true) {
      await out.stdout(`${JSON.stringify(result, null, 2)}\n`);
      return result.ok ? EXIT_OK : EXIT_DAMAGE;
    }
    const lines: string[] = [];
    if (result.ok) {
      const range = result.lsnRange === null ? '' : `, LSN ${result.lsnRange.first}..${result.lsnRange.last}`;
      lines.push(`ok: ${count(result.segments, 'segment')}, ${count(result.records, 'record')}${range}, checked as open with checkpointLsn ${fence} checks them`);
    } else {
      lines.push(`DAMAGED: ${count(problems.length, 'problem')}; open with checkpointLsn ${fence} refuses the log at the first`);
      for (const [index, problem] of result.problems.entries()) {
        lines.push(
          `problem ${index + 1}: ${problem.message}`,
          `  code   ${problem.code}`,
          `  file   ${problem.file ?? '-'}`,
          `  offset ${problem.offset ?? '-'}`,
          `  LSN    ${problem.lsn ?? '-'}`,
        );
      }
    }
    const tail = result.tornTail;
    if (tail !== null) {
      lines.push(`torn tail in segment ${tail.segmentId} at offset ${tail.offset} (${count(tail.discardedBytes, 'byte')}): ${tail.cause}; open would cut it (or a Wal is writing it right now)`);
    }
    if (result.unfinishedLastSegment) lines.push('the last segment has an unfinished header and no record; open would replace it');
    if (result.coveredByFence > 0) lines.push(`covered by the fence: ${count(result.coveredByFence, 'record')} of transactions begun before the first segment`);
    await out.stdout(`${lines.join('\n')}\n`);
    return result.ok ? EXIT_OK : EXIT_DAMAGE;
  },
};
