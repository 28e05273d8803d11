import { call, type IoProgram } from './io/program.js';
import { attempt, segmentPath } from './segment-files.js';
import type { TxSpans } from './tx-spans.js';
import type { Segment } from './segment.js';

/**
 * Deletes the oldest sealed segments whose records are all at or below
 * `fence`, never the active segment or the one before it, and never a segment
 * whose open transactions end above the fence (docs/DESIGN.md). Oldest first,
 * and the directory fsync'd after each delete: a file system may persist
 * unlinks out of order, and a later one durable without an earlier one would
 * leave a hole that open refuses. Returns how many were deleted.
 */
export function* truncateProgram(dir: string, segments: Segment[], spans: TxSpans, fence: number): IoProgram<number> {
  let deletable = 0;
  for (let i = 0; i < segments.length - 2; i++) {
    const segment = segments[i] as Segment;
    if (segment.state !== 'sealed' || segment.lastLsn > fence) break;
    if (spans.carriedEndedBy(segment.id, fence)) deletable = i + 1;
  }
  for (let deleted = 0; deleted < deletable; deleted++) {
    const oldest = segments[0] as Segment;
    const file = segmentPath(dir, oldest.id);
    yield* attempt('delete segment', file, call('unlink', file));
    segments.shift();
    spans.segmentDeleted(oldest.id);
    yield* attempt('fsync directory', dir, call('syncDir', dir));
  }
  return deletable;
}
