import type { IoProgram } from '../io/program.js';
import type { FrameChecksums } from '../io/types.js';
import { resolveFence } from './fence.js';
import type { ResumePoint } from './log-stream.js';
import { LogValidator } from './log-validator.js';
import { listSegments, segmentHeaderAndSize, type SegmentRef } from './segments.js';

/*
 * Where a log starts and ends, read without the lock: what a shipper in
 * another process asks before it ships (docs/REPLICATION.md).
 */

/** Where a reader starts by default: the transactions a default open replays, scanned from the oldest segment. */
export function* defaultResumePoint(dir: string, checksums: FrameChecksums): IoProgram<ResumePoint> {
  const refs = yield* listSegments(dir);
  const fence = yield* resolveFence(refs, 'marker', checksums);
  const first = refs[0];
  const scanFromLsn = first === undefined ? 1 : ((yield* segmentHeaderAndSize(first, checksums)).header?.baseLsn ?? 1);
  return { fromLsn: fence + 1, scanFromLsn: Math.min(scanFromLsn, fence + 1) };
}

/** The highest LSN of a record on disk (0 when none), past a torn tail's damage not at all. */
export function* lastLsnOnDisk(dir: string, checksums: FrameChecksums): IoProgram<number> {
  const refs = yield* listSegments(dir);
  for (let index = refs.length - 1; index >= 0; index--) {
    const validator = new LogValidator(dir, [refs[index] as SegmentRef], { checksums, reuse: null, follow: false });
    let last: number | null = null;
    for (;;) {
      const step = yield* validator.next();
      if (step.type === 'record') last = step.record.lsn;
      else if (step.type === 'segment') last ??= step.segment.baseLsn - 1;
      else if (step.type === 'end' || step.type === 'caughtUp') break;
    }
    if (last !== null) return last;
  }
  return 0;
}
