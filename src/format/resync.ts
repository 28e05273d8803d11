import type { Crc32 } from './crc.js';
import { FRAME_OVERHEAD, isRecordKind } from './constants.js';
import { readFrame } from './frame.js';
import { readU64 } from './little-endian.js';

/** What lies after damage in a segment: valid frames a cut would discard. */
export interface FramesAfterDamage {
  count: number;
  lsnRange: { first: number; last: number } | null;
}

const KIND_AT = 4;
const LSN_AT = 5;

/**
 * Looks for valid frames in `bytes[from, end)`, after damage at `from`, as
 * LevelDB's reader resynchronises: at every byte offset, a frame whose kind is
 * known, whose LSN could follow the damage (at least `minLsn`, and no further
 * than one record per frame overhead could reach) and whose CRC holds. A run
 * of frames found that way is followed to its end, then the search goes on
 * after it. Tells a torn write (nothing readable after it) from damage in the
 * middle of written data, which open must not cut without saying so.
 */
export function findFramesAfterDamage(bytes: Buffer, from: number, end: number, minLsn: number, crc32: Crc32): FramesAfterDamage {
  const maxLsn = minLsn + Math.ceil((end - from) / FRAME_OVERHEAD);
  let count = 0;
  let first = 0;
  let last = 0;
  for (let at = from + 1; at + FRAME_OVERHEAD <= end; ) {
    if (!couldStartFrame(bytes, at, end, minLsn, maxLsn)) {
      at++;
      continue;
    }
    let runEnd = at;
    for (;;) {
      const result = readFrame(bytes, runEnd, end, crc32);
      if (result.status !== 'record') break;
      if (count === 0) first = result.frame.lsn;
      count++;
      last = result.frame.lsn;
      runEnd += result.frame.length;
    }
    at = runEnd === at ? at + 1 : runEnd;
  }
  return { count, lsnRange: count === 0 ? null : { first, last } };
}

/** The cheap checks first: most offsets fail on the length, kind or LSN before any CRC is computed. */
function couldStartFrame(bytes: Buffer, at: number, end: number, minLsn: number, maxLsn: number): boolean {
  const length = bytes.readUInt32LE(at);
  if (length < FRAME_OVERHEAD || length > end - at) return false;
  if (!isRecordKind(bytes[at + KIND_AT] as number)) return false;
  const lsn = readU64(bytes, at + LSN_AT);
  return lsn >= minLsn && lsn <= maxLsn;
}
