import { FRAME_OVERHEAD, HEADER_BYTES, RecordKind } from '../format/constants.js';
import { all, type IoProgram } from '../io/program.js';
import type { FrameChecksums } from '../io/types.js';
import { SegmentSource, type Reuse } from './segment-source.js';
import type { SegmentRef } from './segments.js';

/*
 * `checkpointLsn: 'marker'`: the snapshot LSN of the log's last Checkpoint
 * record, 0 when it has none (docs/DURABILITY.md, "Which fence open uses").
 * Replay needs the fence before it hands over the first transaction, so the
 * marker is looked for first, from the newest segment back to the first one
 * that holds one: after a recent checkpoint() that is a segment or two. The
 * older segments are walked four at a time (a log with no marker is walked
 * whole, and the walks' small reads overlap).
 *
 * The walk must see exactly the frames the validator will accept. In the last
 * segment damage is a torn tail that is cut, so every frame there is checked
 * whole (CRC included) and the walk stops where the validator stops. Anywhere
 * else damage refuses the log, so a marker found there only matters when every
 * frame is sound: the walk follows the length fields and checks only
 * Checkpoint frames whole, without reading the payloads it steps over.
 */
/** Segments walked at once. */
const WALK_LANES = 4;

export function* resolveFence(refs: readonly SegmentRef[], option: number | 'marker', checksums: FrameChecksums): IoProgram<number> {
  if (option !== 'marker') return option;
  // No view outlives a walk's next step: each lane's memory is reused throughout.
  const lanes = Array.from({ length: WALK_LANES }, () => ({ beforeReuse: () => undefined, buffers: [] }));
  const last = refs.length - 1;
  if (last < 0) return 0;
  const newest = yield* markerIn(refs[last] as SegmentRef, true, checksums, lanes[0] as Reuse);
  if (newest !== null) return newest;
  // The older segments a few at a time, newest first: a walk is a chain of small reads, and the chains of several overlap.
  for (let end = last; end > 0; end -= WALK_LANES) {
    const group = refs.slice(Math.max(0, end - WALK_LANES), end).reverse();
    const found = yield* all(group.map((ref, lane) => markerIn(ref, false, checksums, lanes[lane] as Reuse)));
    const snapshot = found.find((candidate): candidate is number => candidate !== null);
    if (snapshot !== undefined) return snapshot;
  }
  return 0;
}

/** The snapshot LSN of the last Checkpoint record in one segment, null when it holds none. */
function* markerIn(ref: SegmentRef, checkEveryFrame: boolean, checksums: FrameChecksums, reuse: Reuse): IoProgram<number | null> {
  const source = new SegmentSource(ref, checksums, { reuse });
  yield* source.open();
  try {
    return yield* lastMarkerIn(source, checkEveryFrame);
  } finally {
    yield* source.close();
  }
}

const KIND_AT = 4;

/** Past a frame this long, the walk reads the next frame's head alone rather than a chunk from it on. */
const LARGE_FRAME_BYTES = 64 * 1024;

function* lastMarkerIn(source: SegmentSource, checkEveryFrame: boolean): IoProgram<number | null> {
  let snapshot: number | null = null;
  let skippedLarge = false;
  for (let offset = HEADER_BYTES; ; ) {
    const head: Buffer = skippedLarge ? yield* source.headAt(offset) : yield* source.bytesAt(offset, FRAME_OVERHEAD);
    if (head.length < FRAME_OVERHEAD) return snapshot;
    const length = head.readUInt32LE(0);
    if (length < FRAME_OVERHEAD) return snapshot;
    if (checkEveryFrame || head[KIND_AT] === RecordKind.Checkpoint) {
      const { result } = yield* source.frameAt(offset);
      if (result.status !== 'record') return snapshot;
      if (result.frame.kind === RecordKind.Checkpoint) snapshot = result.frame.txBeginLsn;
    }
    skippedLarge = !checkEveryFrame && length >= LARGE_FRAME_BYTES;
    offset += length;
  }
}
