import { FRAME_OVERHEAD, HEADER_BYTES, RecordKind } from '../format/constants.js';
import type { Crc32 } from '../format/crc.js';
import type { IoProgram } from '../io/program.js';
import { SegmentSource } from './segment-source.js';
import type { SegmentRef } from './segments.js';

/*
 * `checkpointLsn: 'marker'`: the snapshot LSN of the log's last Checkpoint
 * record, 0 when it has none (docs/DURABILITY.md, "Which fence open uses").
 * Replay needs the fence before it hands over the first transaction, so the
 * marker is looked for first, from the newest segment back to the first one
 * that holds one: after a recent checkpoint() that is a segment or two.
 *
 * The walk must see exactly the frames the validator will accept. In the last
 * segment damage is a torn tail that is cut, so every frame there is checked
 * whole (CRC included) and the walk stops where the validator stops. Anywhere
 * else damage refuses the log, so a marker found there only matters when every
 * frame is sound: the walk follows the length fields and checks only
 * Checkpoint frames whole, without reading the payloads it steps over.
 */
export function* resolveFence(refs: readonly SegmentRef[], option: number | 'marker', crc32: Crc32): IoProgram<number> {
  if (option !== 'marker') return option;
  // No view outlives the walk's next step: its memory is reused throughout.
  const reuse = { beforeReuse: () => undefined, buffers: [] };
  for (let index = refs.length - 1; index >= 0; index--) {
    const source = new SegmentSource(refs[index] as SegmentRef, crc32, { reuse });
    yield* source.open();
    try {
      const snapshot = yield* lastMarkerIn(source, index === refs.length - 1);
      if (snapshot !== null) return snapshot;
    } finally {
      yield* source.close();
    }
  }
  return 0;
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
