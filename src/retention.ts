import { HEADER_BYTES } from './format/constants.js';
import type { Segment } from './segment.js';

/**
 * What keeps truncation (truncateUpTo, checkpoint) from deleting records that
 * someone still needs: a shipper's transactions the stream has not
 * acknowledged yet (docs/REPLICATION.md, "Retention"). A hold names the
 * oldest LSN it needs; truncation never deletes a segment holding a record at
 * or above the lowest such LSN.
 */
export interface RetentionHold {
  /** Records at or above it are kept. */
  readonly fromLsn: number;
  /** Bytes of the segments it keeps: from the one holding `fromLsn` to the end of the log. */
  readonly bytes: number;
  /** The holder needs less now; a hold never moves back. */
  advance(fromLsn: number): void;
  release(): void;
}

export class Retention {
  private readonly holds = new Set<{ fromLsn: number }>();

  constructor(private readonly segments: readonly Segment[]) {}

  hold(fromLsn: number): RetentionHold {
    const entry = { fromLsn };
    this.holds.add(entry);
    const segments = this.segments;
    const holds = this.holds;
    return {
      get fromLsn() {
        return entry.fromLsn;
      },
      get bytes() {
        return bytesFrom(segments, entry.fromLsn);
      },
      advance(fromLsn: number) {
        if (fromLsn > entry.fromLsn) entry.fromLsn = fromLsn;
      },
      release() {
        holds.delete(entry);
      },
    };
  }

  /** The fence truncation may use: `fence`, lowered below every record a hold keeps. */
  limit(fence: number): number {
    let limited = fence;
    for (const { fromLsn } of this.holds) limited = Math.min(limited, fromLsn - 1);
    return limited;
  }
}

/**
 * Bytes of the segments holding records at or above `lsn`: newest first,
 * stopping at the first one wholly below it (segments are in LSN order), so
 * the cost is the segments held, not the log's length (a shipper's limit is
 * checked at every commit).
 */
function bytesFrom(segments: readonly Segment[], lsn: number): number {
  let bytes = 0;
  for (let i = segments.length - 1; i >= 0; i--) {
    const segment = segments[i] as Segment;
    if (segment.lastLsn < lsn) break;
    bytes += segment.stagedEnd - HEADER_BYTES;
  }
  return bytes;
}
