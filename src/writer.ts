import type { CommitQueue } from './commit-queue.js';
import { toIoError } from './errors.js';
import { encodeSegmentHeader } from './format/header.js';
import { call, type IoProgram } from './io/program.js';
import type { Fd, WalIo } from './io/types.js';
import type { MetricsRecorder } from './metrics.js';
import type { RecentWrites } from './recent-writes.js';
import {
  adoptSpareFile,
  attempt,
  cleanupAfterFailure,
  createSegmentFile,
  prepareSegmentFile,
  shortWrite,
  sparePath,
  writeFully,
  type Preallocation,
  type SegmentFileConfig,
} from './segment-files.js';
import type { Segment } from './segment.js';
import type { StagedChunk } from './staging.js';
import type { TxSpans } from './tx-spans.js';

const PAGE_BYTES = 4096;
/** Written bytes a blocking writer lets pile up before starting their writeback. */
const WRITEBACK_STEP_BYTES = 1024 * 1024;

export interface WriterConfig {
  dir: string;
  segmentBytes: number;
  preallocation: Preallocation;
}

/** The spare segment while it is being prepared in the background. */
interface SpareJob {
  /** Its file exists (the exclusive create returned). */
  created: boolean;
  /** A blocking close went ahead without it: it closes its fd and is forgotten. */
  abandoned: boolean;
}

/**
 * The io of the log: turns staged bytes (RecordStager) into writes, creates
 * and seals segments, fsyncs, prepares the spare segment, closes files, all
 * as io programs. It decides nothing about *when*: the Scheduler does.
 */
export class LogWriter {
  /** True while a drain's write phase (writes, creates, seals) is in flight. */
  busy = false;
  private spareFd: Fd | null = null;
  private spareJob: SpareJob | null = null;
  /** A segment filled up while this Wal was open: the log fills segments, so a spare is kept ready from now on. */
  private rotated = false;
  /**
   * Fsyncs running on each fd. Counted, not one slot: closeSync's own fsync
   * runs while the group timer's may still be in flight on the same fd, and
   * the fd must stay open until the last of them returns.
   */
  private readonly fsyncsOn = new Map<Fd, number>();
  private readonly closeAfterFsync = new Set<Fd>();

  constructor(
    private readonly io: WalIo,
    private readonly config: WriterConfig,
    private readonly queue: CommitQueue,
    private readonly spans: TxSpans,
    /** Every segment on disk or about to be, oldest first; the last is the active one. Shared with the RecordStager. */
    readonly segments: Segment[],
    /** Told of every write and fsync; null when the Wal keeps no metrics. */
    private readonly metrics: MetricsRecorder | null,
    /** Given every write's bytes, for in-process readers. */
    private readonly recent: RecentWrites,
  ) {}

  get active(): Segment {
    return this.segments[this.segments.length - 1] as Segment;
  }

  // ---- draining --------------------------------------------------------

  /**
   * The fsync decision, in one place: bytes up to `lsn` are fsync'd now when a
   * caller forced it (sync, close, the group timer) or a durable waiter (a
   * per-commit or `durable: true` commit) waits at or below `lsn`.
   */
  private fsyncDue(lsn: number, forced: boolean): boolean {
    return forced || this.queue.awaitsFsyncUpTo(lsn);
  }

  /** True when a drain round has something to do; `forceFsync` asks for an fsync of written bytes. */
  hasWork(forceFsync: boolean): boolean {
    for (let i = this.firstUnsealed(); i < this.segments.length; i++) {
      const segment = this.segments[i] as Segment;
      if (segment.state === 'planned' || segment.sealWhenWritten || (segment.staging?.stagedBytes ?? 0) > 0) return true;
    }
    const written = this.queue.writtenLsn;
    return this.queue.durableLsn < written && this.fsyncDue(written, forceFsync);
  }

  /**
   * Writes everything staged (creating and sealing segments on the way), then
   * fsyncs the active segment if `forceFsync` or a durable waiter needs it.
   * Any error escapes: the caller poisons the Wal.
   */
  *drainRound(forceFsync: boolean): IoProgram<void> {
    this.busy = true;
    try {
      // Segment by segment, in order: a later segment is never written before
      // the earlier one is whole and sealed, or a crash could leave a gap.
      // (No index is held across a yield: truncation may shift the array meanwhile.)
      for (;;) {
        const segment = this.segments[this.firstUnsealed()] as Segment;
        if (segment.state === 'planned') yield* this.createSegment(segment);
        yield* this.writeStaged(segment, forceFsync);
        if (!segment.sealWhenWritten) break;
        if ((segment.staging?.stagedBytes ?? 0) > 0) continue; // staged while we wrote
        yield* this.sealSegment(segment);
      }
    } finally {
      this.busy = false;
    }
    const written = this.queue.writtenLsn;
    if (this.queue.durableLsn < written && this.fsyncDue(written, forceFsync)) {
      yield* this.fsyncActive();
    }
  }

  /**
   * Whether the staged bytes need nothing but one `appendFrames` call
   * (`writeActiveNow`): they all go to the active segment with no segment to
   * create or seal first, no async write is in flight (writes stay in log
   * order), and there are at most `maxBytes`.
   */
  canWriteInOneCall(maxBytes: number): boolean {
    const active = this.active;
    if (this.busy || active.state !== 'open' || active.sealWhenWritten || this.firstUnsealed() !== this.segments.length - 1) return false;
    const staged = active.staging?.stagedBytes ?? 0;
    return staged > 0 && staged <= maxBytes;
  }

  /** Whether writing the staged bytes now fsyncs them too: forced, or someone waits for it (`fsyncDue`). */
  stagedFsyncDue(forceFsync: boolean): boolean {
    return this.fsyncDue(this.active.lastLsn, forceFsync);
  }

  /**
   * Writes the active segment's staged bytes with one blocking `appendFrames`,
   * fsyncing in the same call when due, once `canWriteInOneCall` said so: the
   * write on the event loop (never with an fsync; docs/DESIGN.md) and
   * commitSync's usual case. A direct call rather than an io program: the
   * generators cost 0.3 µs of the 0.8 µs of JavaScript a commitSync took
   * (docs/BENCHMARKS.md), and this call is all there is to run. Returns
   * whether it fsync'd.
   */
  writeActiveNow(forceFsync: boolean): boolean {
    const segment = this.active;
    const chunk = segment.staging?.take() ?? null;
    if (chunk === null) return false;
    const sync = this.fsyncDue(chunk.lastLsn, forceFsync);
    const startedAt = this.metrics === null ? 0 : performance.now();
    let wrote: number;
    try {
      wrote = this.io.sync.appendFrames(segment.fd as Fd, chunk.bytes, segment.writtenEnd, sync);
    } catch (error) {
      throw toIoError(error, 'write', segment.file);
    }
    this.wrote(segment, chunk, wrote, sync, startedAt);
    return sync;
  }

  /**
   * After a blocking write that no fsync follows (commitSync in sync none or
   * group, whose timer cannot run while the caller blocks): once a MiB is
   * written since the last time, starts its writeback, so the fdatasync that
   * seals the segment does not find all of it dirty (docs/BENCHMARKS.md, W4).
   * Up to the last whole page only: the next write goes on filling that one.
   */
  startWritebackIfDue(): void {
    const segment = this.active;
    const end = segment.writtenEnd - (segment.writtenEnd % PAGE_BYTES);
    if (end - segment.writebackEnd < WRITEBACK_STEP_BYTES) return;
    try {
      this.io.sync.startWriteback(segment.fd as Fd, segment.writebackEnd, end - segment.writebackEnd);
    } catch (error) {
      throw toIoError(error, 'start writeback', segment.file);
    }
    segment.writebackEnd = end;
  }

  private firstUnsealed(): number {
    let i = this.segments.length - 1;
    while (i > 0 && (this.segments[i - 1] as Segment).state !== 'sealed') i--;
    return i;
  }

  /**
   * Fills in the CRCs of the staged frames and writes them in one io call,
   * fsyncing in the same call when this is the active segment and the fsync
   * is due anyway: one hop off the event loop per batch in per-commit mode.
   */
  private *writeStaged(segment: Segment, forceFsync: boolean): IoProgram<void> {
    const chunk = segment.staging?.take() ?? null;
    if (chunk === null) return;
    const sync = !segment.sealWhenWritten && this.fsyncDue(chunk.lastLsn, forceFsync);
    const file = segment.file;
    const startedAt = this.metrics === null ? 0 : performance.now();
    const wrote = yield* attempt('write', file, call('appendFrames', segment.fd as Fd, chunk.bytes, segment.writtenEnd, sync));
    this.wrote(segment, chunk, wrote, sync, startedAt);
  }

  /**
   * After a write of `chunk` (begun at `startedAt`): a short one fails (the
   * Wal poisons, never retries); else its records are written, and durable
   * when `synced`.
   */
  private wrote(segment: Segment, chunk: StagedChunk, wrote: number, synced: boolean, startedAt: number): void {
    if (wrote !== chunk.bytes.length) throw shortWrite(wrote, chunk.bytes.length, segment.writtenEnd, segment.file);
    this.metrics?.wrote(startedAt, wrote, chunk.commits, synced);
    this.recent.wrote(segment.id, segment.writtenEnd, chunk.bytes);
    segment.writtenEnd += chunk.bytes.length;
    segment.staging?.recycle(chunk);
    this.queue.written(chunk.lastLsn);
    if (synced) this.markDurable(chunk.lastLsn);
  }

  private *createSegment(segment: Segment): IoProgram<void> {
    const spare = this.spareFd;
    this.spareFd = null;
    segment.fd =
      spare === null
        ? yield* createSegmentFile(this.fileConfigFor(segment.replica), segment.id, segment.baseLsn)
        : yield* adoptSpareFile(this.fileConfigFor(segment.replica), spare, segment.id, segment.baseLsn);
    segment.state = 'open';
    this.rotated = true;
  }

  /**
   * True when the next round creates a segment while the spare is still being
   * prepared: the async drain loop waits for it rather than create and
   * zero-fill a second file in place (docs/BENCHMARKS.md, W5).
   */
  get spareComing(): boolean {
    return this.spareJob !== null && this.segments.some((segment) => segment.state === 'planned');
  }

  /**
   * Whether a spare segment should be prepared now: none ready or in the
   * works, and the active segment at least half full, or a segment already
   * filled up since open (then the spare has a whole segment's time to be
   * ready: with large commits half a segment is a few of them, less than
   * zero-filling one takes; docs/BENCHMARKS.md, W5). A small log never
   * carries an empty segment-sized file beside it (docs/FORMAT.md).
   */
  get wantsSpare(): boolean {
    const active = this.active;
    if (this.spareFd !== null || this.spareJob !== null || active.state !== 'open') return false;
    return this.rotated || active.stagedEnd >= this.config.segmentBytes / 2;
  }

  /**
   * Prepares the next segment file ahead of rotation (run in the background
   * by the async API), so a rotation only writes a header and renames.
   */
  *prepareSpare(): IoProgram<void> {
    if (!this.wantsSpare) return;
    const job: SpareJob = { created: false, abandoned: false };
    this.spareJob = job;
    const file = sparePath(this.config.dir);
    try {
      const fd = yield* attempt('create spare segment', file, call('openSegment', file, true));
      job.created = true;
      try {
        if (!job.abandoned) yield* prepareSegmentFile(this.fileConfigFor(false), fd, file);
      } catch (error) {
        yield* cleanupAfterFailure(call('close', fd));
        throw error;
      }
      if (job.abandoned) yield* call('close', fd);
      else this.spareFd = fd;
    } catch (error) {
      if (!job.abandoned) throw error; // an abandoned spare is no longer part of the log
    } finally {
      if (this.spareJob === job) this.spareJob = null;
    }
  }

  /**
   * Lets a blocking close go ahead while the spare is being prepared: the step
   * in flight finishes on the spare's own fd, which is then closed. Its name is
   * removed now, while the lock is held; only a create still in flight can
   * leave the file behind, for the next open to remove.
   */
  *abandonSpare(): IoProgram<void> {
    const job = this.spareJob;
    if (job === null) return;
    job.abandoned = true;
    this.spareJob = null;
    if (job.created) yield* attempt('remove spare segment', sparePath(this.config.dir), call('unlink', sparePath(this.config.dir)));
  }

  /** docs/FORMAT.md, "The sealed flag": written, fsync'd, header rewritten sealed, fsync'd, trimmed to its data. */
  private *sealSegment(segment: Segment): IoProgram<void> {
    const file = segment.file;
    const fd = segment.fd as Fd;
    // Its records must be durable before the flag says sealed; a per-commit round made them so already.
    if (this.queue.durableLsn < segment.lastLsn) {
      yield* this.datasync('fsync before sealing', file, fd);
      this.markDurable(segment.lastLsn);
    }
    const sealedHeader = encodeSegmentHeader(
      { baseLsn: segment.baseLsn, sealed: true, replica: segment.replica, formatVersion: segment.formatVersion },
      this.io.crc32,
    );
    yield* writeFully(fd, sealedHeader, 0, 'seal segment', file);
    yield* this.datasync('fsync sealed header', file, fd);
    yield* attempt('trim sealed segment', file, call('truncate', fd, segment.writtenEnd));
    segment.state = 'sealed';
    segment.fd = null;
    segment.staging = null;
    this.metrics?.rotated();
    yield* this.closeFd(fd, file);
  }

  /** One fdatasync, told to the metrics. */
  private *datasync(what: string, file: string, fd: Fd): IoProgram<void> {
    const start = this.metrics?.fsyncStarting();
    yield* attempt(what, file, call('datasync', fd));
    if (start !== undefined) this.metrics?.synced(start);
  }

  /** True when written bytes wait for an fsync. */
  get hasNonDurableWrites(): boolean {
    return this.queue.durableLsn < this.queue.writtenLsn;
  }

  /** The group timer's round: fsyncs what is written, and writes nothing staged. */
  *fsyncWritten(): IoProgram<void> {
    if (this.hasNonDurableWrites) yield* this.fsyncActive();
  }

  /**
   * Fsyncs the newest segment that has written bytes: the active one, or,
   * while a rotation is staged but not yet drained, the one it will seal.
   * Older segments are sealed, which fsyncs them.
   */
  private *fsyncActive(): IoProgram<void> {
    const segment = this.segments.findLast((candidate) => candidate.fd !== null) as Segment;
    const fd = segment.fd as Fd;
    const covered = this.queue.writtenLsn;
    this.fsyncsOn.set(fd, (this.fsyncsOn.get(fd) ?? 0) + 1);
    let synced = false;
    try {
      yield* this.datasync('fsync', segment.file, fd);
      synced = true;
    } finally {
      const left = (this.fsyncsOn.get(fd) as number) - 1;
      if (left > 0) this.fsyncsOn.set(fd, left);
      else this.fsyncsOn.delete(fd);
      // The Wal closed meanwhile and left the fd to this fsync; a failed fsync stays the failure reported.
      if (left === 0 && this.closeAfterFsync.delete(fd)) {
        if (synced) yield* attempt('close', segment.file, call('close', fd));
        else yield* cleanupAfterFailure(call('close', fd));
      }
    }
    this.markDurable(covered);
  }

  private markDurable(lsn: number): void {
    this.queue.durable(lsn);
    this.spans.forgetDurablyEnded(this.queue.durableLsn);
  }

  /** Closes every open segment file (an fd an async fsync still uses is closed when it returns) and drops the spare. */
  *closeFiles(): IoProgram<void> {
    if (this.spareFd !== null) {
      const spare = this.spareFd;
      this.spareFd = null;
      const file = sparePath(this.config.dir);
      yield* attempt('close spare segment', file, call('close', spare));
      yield* attempt('remove spare segment', file, call('unlink', file));
    }
    for (const segment of this.segments) {
      if (segment.fd === null) continue;
      const fd = segment.fd;
      segment.fd = null;
      yield* this.closeFd(fd, segment.file);
    }
  }

  private *closeFd(fd: Fd, file: string): IoProgram<void> {
    if (this.fsyncsOn.has(fd)) {
      this.closeAfterFsync.add(fd);
      return;
    }
    yield* attempt('close', file, call('close', fd));
  }

  /** The spare has no header yet: the replica flag matters only once it becomes a segment. */
  private fileConfigFor(replica: boolean): SegmentFileConfig {
    return { ...this.config, crc32: this.io.crc32, replica };
  }
}
