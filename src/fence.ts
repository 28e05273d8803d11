import { FRAME_OVERHEAD, HEADER_BYTES, MAX_FRAME_BYTES, RecordKind } from './format/constants.js';
import type { Crc32 } from './format/crc.js';
import { readFrame } from './format/frame.js';
import { call, type IoProgram } from './io/program.js';
import type { SegmentRef } from './replay.js';
import { attempt } from './segment-files.js';

/*
 * `checkpointLsn: 'marker'`: the snapshot LSN of the log's last Checkpoint
 * record, 0 when it has none (docs/DURABILITY.md, "Which fence open uses").
 * Replay needs the fence before it hands over the first transaction, so the
 * marker is looked for first, from the newest segment back to the first one
 * that holds one: after a recent checkpoint() that is a segment or two.
 *
 * The walk must see exactly the frames the scan will accept. In the last
 * segment, unless sealed, damage is a torn tail the scan cuts, so every frame
 * there is checked whole (CRC included) and the walk stops where the scan
 * stops. Anywhere else damage refuses the log, so a marker found there only
 * matters when every frame is sound; the walk follows the length fields and
 * checks only Checkpoint frames whole, reading a window at a time and
 * skipping over large payloads without reading them.
 */
export function* resolveFence(refs: readonly SegmentRef[], option: number | 'marker', crc32: Crc32): IoProgram<number> {
  if (option !== 'marker') return option;
  for (let index = refs.length - 1; index >= 0; index--) {
    const ref = refs[index] as SegmentRef;
    const snapshot = index === refs.length - 1 ? yield* markerInLastSegment(ref, crc32) : yield* markerByLengths(ref, crc32);
    if (snapshot !== null) return snapshot;
  }
  return 0;
}

/** Every frame checked whole, as the scan checks a last segment. */
function* markerInLastSegment(ref: SegmentRef, crc32: Crc32): IoProgram<number | null> {
  const bytes: Buffer = yield* attempt('read segment', ref.path, call('readFile', ref.path));
  let snapshot: number | null = null;
  for (let offset = HEADER_BYTES; ; ) {
    const result = readFrame(bytes, offset, bytes.length, crc32);
    if (result.status !== 'record') return snapshot;
    if (result.frame.kind === RecordKind.Checkpoint) snapshot = result.frame.txBeginLsn;
    offset += result.frame.length;
  }
}

const WINDOW_BYTES = 64 * 1024;
const KIND_AT = 4;

/** Follows the length fields; a Checkpoint frame is read and checked whole. */
function* markerByLengths(ref: SegmentRef, crc32: Crc32): IoProgram<number | null> {
  const file = ref.path;
  const fd = yield* attempt('open segment', file, call('openRead', file));
  try {
    const window = Buffer.allocUnsafe(WINDOW_BYTES);
    let snapshot: number | null = null;
    for (let position = HEADER_BYTES; ; ) {
      const got = yield* attempt('read segment', file, call('read', fd, window, 0, WINDOW_BYTES, position));
      let at = 0;
      while (got - at >= FRAME_OVERHEAD) {
        const length = window.readUInt32LE(at);
        if (length < FRAME_OVERHEAD || length > MAX_FRAME_BYTES) return snapshot;
        if (window[at + KIND_AT] === RecordKind.Checkpoint) {
          const frame = at + length <= got ? window.subarray(at, at + length) : yield* readWhole(fd, file, position + at, length);
          const result = readFrame(frame, 0, frame.length, crc32);
          if (result.status !== 'record') return snapshot;
          snapshot = result.frame.txBeginLsn;
        }
        at += length;
      }
      if (got < WINDOW_BYTES && at >= got) return snapshot;
      if (got - at > 0 && got < WINDOW_BYTES) return snapshot; // a frame cut by the end of the file
      position += at;
    }
  } finally {
    yield* call('close', fd);
  }
}

function* readWhole(fd: number, file: string, position: number, length: number): IoProgram<Buffer> {
  const frame = Buffer.allocUnsafe(length);
  const got = yield* attempt('read segment', file, call('read', fd, frame, 0, length, position));
  return frame.subarray(0, got);
}
