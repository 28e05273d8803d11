import { COMMIT_RECORD_SPAN, FRAME_OVERHEAD, MAX_FRAME_BYTES, MIN_COMMIT_FRAME_BYTES, firstLsnOf, isRecordKind } from '../format/constants.js';
import type { Crc32 } from '../format/crc.js';
import { lastNonZeroByte, readFrame, type FrameReadResult } from '../format/frame.js';
import { readU64 } from '../format/little-endian.js';
import { call, type IoProgram } from '../io/program.js';
import type { Fd } from '../io/types.js';
import type { RecentWrites } from '../recent-writes.js';
import { attempt } from '../segment-files.js';
import type { SegmentRef } from './segments.js';

/** Bytes read per refill. A frame larger than this is read into a buffer of its own. */
export const CHUNK_BYTES = 1024 * 1024;
/** The smallest refill near the end of a file (a file may have grown since its size was taken). */
const MIN_REFILL_BYTES = 4096;

/**
 * One segment file seen through a window of bounded size: memory stays at a
 * chunk plus the largest frame, whatever the segment's size (up to the 4 GiB
 * `segmentBytes` allows). Every read goes through the io seam (`openRead`,
 * `read`), so the fault-injecting and crash-simulating test ios see readers
 * too.
 *
 * Views handed out (frames, payloads) point into the window. By default each
 * refill reads into a new buffer, so earlier views stay valid; a reader that
 * knows no view outlives a refill (replay with `onReplay`, which copies the
 * events of open transactions first: `beforeReuse`) lets the window be reused.
 *
 * An in-process reader passes the Wal's `RecentWrites`: bytes just written
 * are copied from there instead of read back from the file.
 */
export class SegmentSource {
  private fd: Fd | null = null;
  private window: Buffer = Buffer.alloc(0);
  /** File offset of `window[0]`. */
  private start = 0;
  /** Valid bytes in `window`. */
  private filled = 0;
  /** The last refill reached the end of the file (as it was then). */
  private atEof = false;
  /** The file's size when last asked; refills near it ask again. */
  private knownSize = 0;
  /** The next refill's size: a chunk, or, after `forget`, small steps that double up to a chunk. */
  private tailStep = CHUNK_BYTES;

  constructor(
    readonly ref: SegmentRef,
    private readonly crc32: Crc32,
    private readonly reuse: { beforeReuse(): void } | null,
    /**
     * fdatasync the file after every read: whatever was read was written
     * before the fsync began, so it is durable once it returns (a durable-only
     * reader in another process; docs/CLI.md).
     */
    private readonly syncAfterRead = false,
    private readonly recent: RecentWrites | null = null,
  ) {}

  /** Opens the file read-only; WAL_IO with errno ENOENT when truncation removed it. */
  *open(): IoProgram<void> {
    this.fd = yield* attempt('open segment', this.ref.path, call('openRead', this.ref.path));
  }

  *close(): IoProgram<void> {
    const fd = this.fd;
    this.fd = null;
    this.filled = 0;
    if (fd !== null) yield* attempt('close segment', this.ref.path, call('close', fd));
  }

  /** The file's size now. */
  *size(): IoProgram<number> {
    return yield* attempt('stat segment', this.ref.path, call('fileSize', this.fd as Fd));
  }

  /**
   * Forgets what was read, so the next read sees bytes appended since (a
   * follower polling the last segment). The next refills start small and
   * grow: what was appended since is usually a few frames, and the rest of a
   * live segment is preallocated zeros (1 MiB read per wake-up made an
   * in-process reader's p50 ~1 ms).
   */
  forget(): void {
    this.filled = 0;
    this.atEof = false;
    this.tailStep = MIN_REFILL_BYTES;
  }

  /** Up to `length` bytes at `offset` (fewer at the end of the file), as a view. */
  *bytesAt(offset: number, length: number): IoProgram<Buffer> {
    const end = this.start + this.filled;
    if (offset < this.start || offset + length > end) {
      if (!(this.atEof && offset >= this.start && offset <= end)) yield* this.refill(offset, length);
    }
    const from = offset - this.start;
    return this.window.subarray(from, Math.min(from + length, this.filled));
  }

  /**
   * The `FRAME_OVERHEAD` bytes at `offset` (fewer at the end of the file).
   * When they are not in the window, the refill is small (and later ones
   * grow again): for a walk that has just stepped over a large payload it
   * does not need, and would otherwise read a chunk of the next one.
   */
  *headAt(offset: number): IoProgram<Buffer> {
    if (offset < this.start || offset + FRAME_OVERHEAD > this.start + this.filled) this.tailStep = MIN_REFILL_BYTES;
    return yield* this.bytesAt(offset, FRAME_OVERHEAD);
  }

  /**
   * The frame at `offset`, checked as `readFrame` checks it. `readFrame` sees
   * the bytes to the end of the window, which holds the whole frame unless
   * the file ends first: "runs past the end" means past the end of the file.
   */
  *frameAt(offset: number): IoProgram<{ result: FrameReadResult; bytes: Buffer }> {
    let bytes = yield* this.bytesAt(offset, FRAME_OVERHEAD);
    if (bytes.length >= 4) {
      const length = bytes.readUInt32LE(0);
      if (length > bytes.length && length <= MAX_FRAME_BYTES) bytes = yield* this.bytesAt(offset, length);
    }
    return { result: readFrame(bytes, 0, bytes.length, this.crc32), bytes };
  }

  /** One past the last non-zero byte at or after `offset` (`offset` when all zero): reads to the end of the file. */
  *nonZeroEnd(offset: number): IoProgram<number> {
    let last = offset;
    for (let at = offset; ; ) {
      const chunk = yield* this.bytesAt(at, CHUNK_BYTES);
      if (chunk.length === 0) return last;
      const lastInChunk = lastNonZeroByte(chunk, 0, chunk.length);
      if (lastInChunk >= 0) last = at + lastInChunk + 1;
      at += chunk.length;
    }
  }

  /**
   * Valid frames in [from, end) after damage at `from`, found as LevelDB's
   * reader resynchronises: at every byte offset, a frame whose kind is known,
   * whose LSN could follow the damage (at least `minLsn`, at most as far
   * further as the densest records could reach: three LSNs per smallest
   * Commit record) and whose CRC holds; a run of frames found so
   * is followed to its end and the search goes on after it. Tells a torn
   * write (nothing readable after it) from damage in the middle of written data.
   */
  *framesAfterDamage(from: number, end: number, minLsn: number): IoProgram<FramesAfterDamage> {
    const maxLsn = minLsn + Math.ceil(((end - from) * (COMMIT_RECORD_SPAN + 1)) / MIN_COMMIT_FRAME_BYTES);
    let count = 0;
    let first = 0;
    let last = 0;
    for (let at = from + 1; at + FRAME_OVERHEAD <= end; ) {
      const head = yield* this.bytesAt(at, Math.min(CHUNK_BYTES, end - at));
      let candidate = -1;
      for (let i = 0; i + FRAME_OVERHEAD <= head.length; i++) {
        if (couldStartFrame(head, i, end - at - i, minLsn, maxLsn)) {
          candidate = i;
          break;
        }
      }
      if (candidate < 0) {
        at += Math.max(1, head.length - FRAME_OVERHEAD + 1);
        continue;
      }
      at += candidate;
      let runEnd = at;
      for (;;) {
        const { result } = yield* this.frameAt(runEnd);
        if (result.status !== 'record' || runEnd + result.frame.length > end) break;
        if (count === 0) first = firstLsnOf(result.frame);
        count++;
        last = result.frame.lsn;
        runEnd += result.frame.length;
      }
      at = runEnd === at ? at + 1 : runEnd;
    }
    return { count, lsnRange: count === 0 ? null : { first, last } };
  }

  private *refill(offset: number, length: number): IoProgram<void> {
    const recent = this.recent?.bytesFrom(this.ref.id, offset) ?? null;
    if (recent !== null) {
      // Everything written from `offset` on: copied, as views handed out outlive the writer's next write.
      this.prepareWindow(recent.length);
      recent.copy(this.window, 0);
      this.start = offset;
      this.filled = recent.length;
      this.atEof = true;
      return;
    }
    const size = Math.max(length, yield* this.refillBytes(offset));
    this.prepareWindow(size);
    this.start = offset;
    this.filled = 0;
    const got = yield* attempt('read segment', this.ref.path, call('read', this.fd as Fd, this.window, 0, size, offset));
    if (this.syncAfterRead) yield* attempt('fsync segment read', this.ref.path, call('datasync', this.fd as Fd));
    this.filled = got;
    this.atEof = got < size;
  }

  /** A window of at least `size` bytes: the old one when it may be reused, else a new one. */
  private prepareWindow(size: number): void {
    if (this.reuse !== null && this.window.length >= size) {
      this.reuse.beforeReuse();
    } else {
      this.window = Buffer.allocUnsafeSlow(size);
    }
  }

  /**
   * The next step (a chunk, or after `forget` the growing tail steps), or
   * what is left of the file when that is less: a small segment costs a
   * small buffer. (A chunk per segment made opening 12,000 segments of 1 KiB
   * allocate 12 GiB, and the garbage collector took most of the time.)
   */
  private *refillBytes(offset: number): IoProgram<number> {
    const step = this.tailStep;
    this.tailStep = Math.min(CHUNK_BYTES, step * 2);
    if (offset + step > this.knownSize) this.knownSize = yield* this.size();
    return Math.min(step, Math.max(this.knownSize - offset, MIN_REFILL_BYTES));
  }
}

const KIND_AT = 4;
const LSN_AT = 5;

/** The cheap checks first: most offsets fail on the length, kind or LSN before any CRC is computed. */
function couldStartFrame(bytes: Buffer, at: number, room: number, minLsn: number, maxLsn: number): boolean {
  const length = bytes.readUInt32LE(at);
  if (length < FRAME_OVERHEAD || length > room) return false;
  if (!isRecordKind(bytes[at + KIND_AT] as number)) return false;
  const lsn = readU64(bytes, at + LSN_AT);
  return lsn >= minLsn && lsn <= maxLsn;
}

/** What lies after damage in a segment: valid frames a cut would discard. */
export interface FramesAfterDamage {
  count: number;
  lsnRange: { first: number; last: number } | null;
}
