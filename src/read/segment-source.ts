import { COMMIT_RECORD_SPAN, FRAME_OVERHEAD, MAX_FRAME_BYTES, MIN_COMMIT_FRAME_BYTES, firstLsnOf, isRecordKind } from '../format/constants.js';
import { commitFrameLengthAt, frameCrcMatches, lastNonZeroByte, readFrame, type DecodedFrame, type FrameReadResult } from '../format/frame.js';
import { readU64 } from '../format/little-endian.js';
import { begin, call, finish, type Begun, type IoProgram } from '../io/program.js';
import type { Fd, FrameChecksums } from '../io/types.js';
import type { RecentWrites } from '../recent-writes.js';
import { attempt } from '../segment-files.js';
import type { SegmentRef } from './segments.js';

/** Bytes read per refill. A frame larger than this is read into a buffer of its own. */
export const CHUNK_BYTES = 1024 * 1024;
/** The smallest refill near the end of a file (a file may have grown since its size was taken). */
const MIN_REFILL_BYTES = 4096;

/** Room before a chunk read ahead for the end of the window it continues (a frame straddling the two). */
const CARRY_BYTES = CHUNK_BYTES;

/**
 * Memory a reader lets its sources reuse, segment after segment: it promises
 * that no view outlives a refill once `beforeReuse` has run (replay with
 * `onReplay`, which copies the events of open transactions there).
 */
export interface Reuse {
  beforeReuse(): void;
  /** The buffers reused, shared by the reader's sources one after the other (at most two are kept). */
  readonly buffers: Buffer[];
}

export interface SourceOptions {
  /** Without it every refill reads into a new buffer, so earlier views stay valid. */
  reuse?: Reuse;
  /**
   * fdatasync the file after every read: whatever was read was written
   * before the fsync began, so it is durable once it returns (a durable-only
   * reader in another process; docs/CLI.md).
   */
  syncAfterRead?: boolean;
  /** A live Wal's newest writes: bytes just written are copied from there instead of read back (an in-process reader). */
  recent?: RecentWrites;
  /**
   * Reads the next chunk while the current one is parsed: for a reader that
   * goes through the whole segment (replay, a scan), where parsing and the
   * thread pool's copy out of the page cache then overlap.
   */
  readAhead?: boolean;
}

/** A chunk being read ahead: `size` bytes at file offset `offset`, into `buffer` after CARRY_BYTES of room. */
interface ReadAhead {
  offset: number;
  size: number;
  buffer: Buffer;
  read: Begun<number>;
}

/**
 * One segment file seen through a window of bounded size: memory stays at a
 * chunk plus the largest frame (two chunks and their carry room when reading
 * ahead), whatever the segment's size (up to the 4 GiB `segmentBytes`
 * allows). Every read goes through the io seam (`openRead`, `read`), so the
 * fault-injecting and crash-simulating test ios see readers too.
 *
 * Views handed out (frames, payloads) point into the window; `reuse` says
 * how long they stay valid.
 */
export class SegmentSource {
  private fd: Fd | null = null;
  /** The bytes read from file offset `start` on: a view into `windowBuffer`. */
  private window: Buffer = Buffer.alloc(0);
  private windowBuffer: Buffer = this.window;
  /** File offset of `window[0]`. */
  private start = 0;
  /** The last refill reached the end of the file (as it was then). */
  private atEof = false;
  /** The file's size when last asked; refills near it ask again. */
  private knownSize = 0;
  /** The next refill's size: a chunk, or, after `forget`, small steps that double up to a chunk. */
  private tailStep = CHUNK_BYTES;
  private ahead: ReadAhead | null = null;
  /**
   * A run of frames `checkFrameCrcs` found whole with their CRCs holding, in
   * the window it checked: from `checkedNext` (the next frame a walk along
   * the run reaches) to `checkedEnd`, file offsets.
   */
  private checkedWindow: Buffer | null = null;
  private checkedNext = 0;
  private checkedEnd = 0;

  constructor(
    readonly ref: SegmentRef,
    /** With `checkFrameCrcs`, a run of frames is checked in one call; without, each frame's CRC is computed on its own. */
    private readonly checksums: FrameChecksums,
    private readonly options: SourceOptions = {},
  ) {}

  /** Opens the file read-only; WAL_IO with errno ENOENT when truncation removed it. */
  *open(): IoProgram<void> {
    this.fd = yield* attempt('open segment', this.ref.path, call('openRead', this.ref.path));
  }

  *close(): IoProgram<void> {
    yield* this.dropAhead();
    const fd = this.fd;
    this.fd = null;
    this.window = this.window.subarray(0, 0);
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
    this.window = this.window.subarray(0, 0);
    this.atEof = false;
    this.tailStep = MIN_REFILL_BYTES;
  }

  /** Up to `length` bytes at `offset` (fewer at the end of the file), as a view. */
  *bytesAt(offset: number, length: number): IoProgram<Buffer> {
    const end = this.end;
    if (offset < this.start || offset + length > end) {
      if (!(this.atEof && offset >= this.start && offset <= end)) yield* this.refill(offset, length);
    }
    const from = offset - this.start;
    return this.window.subarray(from, from + length);
  }

  /** The file offset just past the window. */
  private get end(): number {
    return this.start + this.window.length;
  }

  /**
   * The `FRAME_OVERHEAD` bytes at `offset` (fewer at the end of the file).
   * When they are not in the window, the refill is small (and later ones
   * grow again): for a walk that has just stepped over a large payload it
   * does not need, and would otherwise read a chunk of the next one.
   */
  *headAt(offset: number): IoProgram<Buffer> {
    if (offset < this.start || offset + FRAME_OVERHEAD > this.end) this.tailStep = MIN_REFILL_BYTES;
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
    return { result: readFrame(bytes, 0, bytes.length, this.checksums.crc32), bytes };
  }

  /**
   * The record at `offset` when the window holds the whole frame: what
   * `frameAt` finds there in the usual case, with no io program to run (its
   * generators cost a small record more than reading it; docs/BENCHMARKS.md,
   * "Reading per record"). Null for anything else, which `frameAt` reads and
   * tells apart.
   */
  recordInWindow(offset: number): DecodedFrame | null {
    const window = this.window;
    const from = offset - this.start;
    if (from < 0 || from + FRAME_OVERHEAD > window.length) return null;
    const length = window.readUInt32LE(from);
    if (length < FRAME_OVERHEAD || from + length > window.length) return null;
    const result = readFrame(window, from, from + length, this.crcChecked(window, offset, length) ? null : this.checksums.crc32);
    return result.status === 'record' ? result.frame : null;
  }

  /**
   * Consecutive Commit records from `offset` while the window holds them, the
   * first beginning at LSN `beginLsn` and each where the one before ended, up
   * to commit LSN `maxCommitLsn`, each as `recordInWindow` finds it (its CRC
   * holds, its payload is well formed): where they end and how many, or null
   * for none. With no object per frame: the shipper's reads.
   */
  commitRunInWindow(offset: number, beginLsn: number, maxCommitLsn: number): { end: number; count: number } | null {
    const window = this.window;
    let at = offset;
    let begin = beginLsn;
    let count = 0;
    while (at >= this.start && begin + COMMIT_RECORD_SPAN <= maxCommitLsn) {
      const length = commitFrameLengthAt(window, at - this.start, window.length, begin);
      if (length === 0 || !this.crcHolds(window, at, length)) break;
      at += length;
      begin += COMMIT_RECORD_SPAN + 1;
      count++;
    }
    return count === 0 ? null : { end: at, count };
  }

  /** The window's bytes from file offset `from` to `to`: a view. */
  windowView(from: number, to: number): Buffer {
    return this.window.subarray(from - this.start, to - this.start);
  }

  /** Whether the CRC of the whole frame at `offset` (in `window`) holds: checked in a run, or on its own. */
  private crcHolds(window: Buffer, offset: number, length: number): boolean {
    return this.crcChecked(window, offset, length) || frameCrcMatches(window, offset - this.start, length, this.checksums.crc32);
  }

  /**
   * Whether the CRC of the whole frame at `offset` (in `window`) is known to
   * hold: one `checkFrameCrcs` call checks the frames from there to the end
   * of the window, and a walk from frame to frame then finds each of them
   * checked (a CRC call per small frame cost more than the CRC itself).
   * Only a frame the run reached counts: an offset inside a frame of the run
   * starts a run of its own.
   */
  private crcChecked(window: Buffer, offset: number, length: number): boolean {
    const { checksums } = this;
    if (checksums.checkFrameCrcs === undefined) return false;
    if (this.checkedWindow !== window || offset !== this.checkedNext || offset >= this.checkedEnd) {
      this.checkedWindow = window;
      this.checkedNext = offset;
      this.checkedEnd = offset + checksums.checkFrameCrcs(window.subarray(offset - this.start));
    }
    if (offset >= this.checkedEnd) return false;
    this.checkedNext = offset + length;
    return true;
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
    const recent = this.options.recent?.bytesFrom(this.ref.id, offset) ?? null;
    if (recent !== null) {
      // Everything written from `offset` on, copied: views handed out outlive the writer's next write.
      const buffer = this.bufferFor(recent.length, false);
      recent.copy(buffer, 0);
      this.setWindow(buffer, buffer.subarray(0, recent.length), offset, true);
      return;
    }
    if (this.ahead !== null && (yield* this.takeAhead(offset, length))) return;
    const size = Math.max(length, yield* this.refillBytes(offset));
    const buffer = this.bufferFor(size, false);
    this.setWindow(buffer, buffer.subarray(0, 0), offset, false);
    const got = yield* attempt('read segment', this.ref.path, call('read', this.fd as Fd, buffer, 0, size, offset));
    if (this.options.syncAfterRead === true) yield* attempt('fsync segment read', this.ref.path, call('datasync', this.fd as Fd));
    this.setWindow(buffer, buffer.subarray(0, got), offset, got < size);
    yield* this.beginAhead();
  }

  /** Makes `view` (in `buffer`) the window: the file's bytes from `offset` on. */
  private setWindow(buffer: Buffer, view: Buffer, offset: number, atEof: boolean): void {
    this.windowBuffer = buffer;
    this.window = view;
    this.start = offset;
    this.atEof = atEof;
  }

  /**
   * Memory for `size` bytes. Without `reuse`, always new. With it, a reused
   * buffer no read ahead is filling (the window's own only when `keepWindow`
   * is false), once `beforeReuse` has let its views go; else a new one, kept
   * for reuse in place of those this source does not use now.
   */
  private bufferFor(size: number, keepWindow: boolean): Buffer {
    const { reuse } = this.options;
    if (reuse === undefined) return Buffer.allocUnsafeSlow(size);
    const inUse = (buffer: Buffer) => buffer === this.ahead?.buffer || (keepWindow && buffer === this.windowBuffer);
    const free = reuse.buffers.find((buffer) => buffer.length >= size && !inUse(buffer));
    if (free !== undefined) {
      reuse.beforeReuse();
      return free;
    }
    const fresh = Buffer.allocUnsafeSlow(size);
    const kept = reuse.buffers.filter((buffer) => buffer === this.windowBuffer || buffer === this.ahead?.buffer);
    reuse.buffers.splice(0, reuse.buffers.length, ...kept, fresh);
    return fresh;
  }

  /** With `readAhead` (never with `syncAfterRead`): begins reading the chunk after the window, when the file goes on past it. */
  private *beginAhead(): IoProgram<void> {
    if (this.options.readAhead !== true || this.options.syncAfterRead === true || this.atEof || this.ahead !== null) return;
    const offset = this.end;
    if (offset >= this.knownSize) return;
    const size = Math.min(CHUNK_BYTES, this.knownSize - offset);
    const buffer = this.bufferFor(CARRY_BYTES + size, true);
    const read = yield* begin('read', this.fd as Fd, buffer, CARRY_BYTES, size, offset);
    this.ahead = { offset, size, buffer, read };
  }

  /**
   * Makes the chunk read ahead the window, the window's bytes from `offset`
   * on carried in front of it, when it continues the window and the two hold
   * the `length` bytes asked for; otherwise lets it finish unused.
   */
  private *takeAhead(offset: number, length: number): IoProgram<boolean> {
    const ahead = this.ahead as ReadAhead;
    const carry = ahead.offset - offset;
    if (ahead.offset !== this.end || offset < this.start || carry > CARRY_BYTES) {
      yield* this.dropAhead();
      return false;
    }
    this.ahead = null;
    const got = yield* attempt('read segment', this.ref.path, finish(ahead.read));
    if (carry + got < length) return false; // a frame longer than both: read from its start
    this.window.copy(ahead.buffer, CARRY_BYTES - carry, offset - this.start);
    this.setWindow(ahead.buffer, ahead.buffer.subarray(CARRY_BYTES - carry, CARRY_BYTES + got), offset, got < ahead.size);
    yield* this.beginAhead();
    return true;
  }

  /**
   * Waits for a read ahead that will not be used (its fd and buffer must not
   * be let go while it runs) and forgets it, its failure too: bytes that turn
   * out to be needed are read again, and a failure then is reported.
   */
  private *dropAhead(): IoProgram<void> {
    const ahead = this.ahead;
    if (ahead === null) return;
    this.ahead = null;
    try {
      yield* finish(ahead.read);
    } catch {
      // see above
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
