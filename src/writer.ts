import type { CommitQueue } from './commit-queue.js';
import { WalError } from './errors.js';
import {
  BATCH_COUNT_BYTES,
  BATCH_ENTRY_OVERHEAD,
  FRAME_OVERHEAD,
  HEADER_BYTES,
  MAX_FRAME_BYTES,
  RecordKind,
} from './format/constants.js';
import { batchPayloadBytes, writeBatchFrame, writeFrame } from './format/frame.js';
import { encodeSegmentHeader } from './format/header.js';
import { MAX_SEGMENT_ID, segmentFileName } from './format/segment-name.js';
import { call, type IoProgram } from './io/program.js';
import type { Fd, WalIo } from './io/types.js';
import type { LsnAllocator } from './lsn.js';
import {
  adoptSpareFile,
  attempt,
  createSegmentFile,
  prepareSegmentFile,
  segmentPath,
  shortWrite,
  sparePath,
  writeFully,
  type Preallocation,
  type SegmentFileConfig,
} from './segment-files.js';
import { Staging } from './staging.js';
import type { TxSpans } from './tx-spans.js';
import type { TxLsns } from './types.js';

/** One segment file as the writer knows it. */
export interface Segment {
  id: number;
  /** Its path, built once: every write and error names it. */
  file: string;
  baseLsn: number;
  /** LSN of its last record (staged or written); baseLsn − 1 while empty. */
  lastLsn: number;
  /** Sealed on disk. */
  sealed: boolean;
  /** Rotation decided; seal it once its staged bytes are written. */
  sealRequested: boolean;
  /** Open file, or null (sealed, or not created yet). */
  fd: Fd | null;
  /** The file exists with its header. */
  created: boolean;
  /** File offset up to which bytes are written. */
  writtenEnd: number;
  /** File offset up to which bytes are written or staged. */
  stagedEnd: number;
  staging: Staging | null;
}

export interface WriterConfig {
  dir: string;
  segmentBytes: number;
  preallocation: Preallocation;
}

/**
 * Encodes records into the active segment's staging buffer, rotates between
 * transactions, and turns staged bytes into writes, seals and fsyncs as io
 * programs. It decides nothing about *when* to drain: the Wal does.
 */
/** The spare segment while it is being prepared in the background. */
interface SpareJob {
  /** Its file exists (the exclusive create returned). */
  created: boolean;
  /** A blocking close went ahead without it: it closes its fd and is forgotten. */
  abandoned: boolean;
}

export class LogWriter {
  /** True while a drain's write phase (writes, creates, seals) is in flight. */
  busy = false;
  private spareFd: Fd | null = null;
  private spareJob: SpareJob | null = null;
  private fsyncFd: Fd | null = null;
  private readonly closeAfterFsync = new Set<Fd>();

  constructor(
    private readonly io: WalIo,
    private readonly config: WriterConfig,
    private readonly lsns: LsnAllocator,
    private readonly queue: CommitQueue,
    private readonly spans: TxSpans,
    /** Every segment on disk or about to be, oldest first; the last is the active one. */
    readonly segments: Segment[],
  ) {}

  get active(): Segment {
    return this.segments[this.segments.length - 1] as Segment;
  }

  // ---- staging ---------------------------------------------------------

  /** TxBegin + MutationBatch(es) + TxCommit for `payloads` (at least one). */
  stageCommit(payloads: readonly Uint8Array[]): TxLsns {
    const batches = splitIntoBatches(payloads);
    const count = batches.length + 2;
    this.lsns.ensureAvailable(count);
    this.rotateIfFull();
    let bytes = 2 * FRAME_OVERHEAD;
    for (const batch of batches) bytes += FRAME_OVERHEAD + batch.payloadBytes;
    const beginLsn = this.lsns.take(count);
    const { target, offset } = this.reserve(bytes);
    let at = writeFrame(target, offset, RecordKind.TxBegin, beginLsn, 0, null);
    let lsn = beginLsn;
    for (const batch of batches) {
      at = writeBatchFrame(target, at, ++lsn, beginLsn, batch.events, batch.payloadBytes);
    }
    writeFrame(target, at, RecordKind.TxCommit, ++lsn, beginLsn, null);
    this.recordsEndAt(lsn);
    return { beginLsn, commitLsn: lsn };
  }

  stageTxBegin(): number {
    this.lsns.ensureAvailable(1);
    this.rotateIfFull();
    const lsn = this.stageMarker(RecordKind.TxBegin, 0);
    this.spans.begun(lsn);
    return lsn;
  }

  stageMutation(beginLsn: number, payload: Uint8Array): number {
    this.lsns.ensureAvailable(1);
    const lsn = this.lsns.take(1);
    const { target, offset } = this.reserve(FRAME_OVERHEAD + payload.length);
    writeFrame(target, offset, RecordKind.Mutation, lsn, beginLsn, payload);
    this.recordsEndAt(lsn);
    return lsn;
  }

  /** One or more MutationBatch records; returns the last one's LSN. */
  stageBatch(beginLsn: number, payloads: readonly Uint8Array[]): number {
    const batches = splitIntoBatches(payloads);
    this.lsns.ensureAvailable(batches.length);
    let bytes = 0;
    for (const batch of batches) bytes += FRAME_OVERHEAD + batch.payloadBytes;
    let lsn = this.lsns.take(batches.length) - 1;
    let { target, offset: at } = this.reserve(bytes);
    for (const batch of batches) {
      at = writeBatchFrame(target, at, ++lsn, beginLsn, batch.events, batch.payloadBytes);
    }
    this.recordsEndAt(lsn);
    return lsn;
  }

  /** TxCommit or TxAbort of a `begin()` transaction. */
  stageTxEnd(beginLsn: number, kind: RecordKind.TxCommit | RecordKind.TxAbort): number {
    const lsn = this.stageMarker(kind, beginLsn);
    this.spans.ended(beginLsn, lsn);
    return lsn;
  }

  stageCheckpoint(snapshotLsn: number): number {
    return this.stageMarker(RecordKind.Checkpoint, snapshotLsn);
  }

  /** The LSN of the last record staged or written. */
  get lastLsn(): number {
    return this.lsns.lastLsn;
  }

  private stageMarker(kind: RecordKind, txBeginLsn: number): number {
    this.lsns.ensureAvailable(1);
    const lsn = this.lsns.take(1);
    const { target, offset } = this.reserve(FRAME_OVERHEAD);
    writeFrame(target, offset, kind, lsn, txBeginLsn, null);
    this.recordsEndAt(lsn);
    return lsn;
  }

  private reserve(bytes: number): { target: Buffer; offset: number } {
    const segment = this.active;
    segment.staging ??= new Staging();
    segment.stagedEnd += bytes;
    return segment.staging.reserve(bytes);
  }

  private recordsEndAt(lsn: number): void {
    const segment = this.active;
    segment.lastLsn = lsn;
    segment.staging?.recordsEndAt(lsn);
  }

  /** Rotation (SPEC §6): only between transactions, once the active segment is full. */
  private rotateIfFull(): void {
    const full = this.active;
    if (full.stagedEnd < this.config.segmentBytes) return;
    if (full.id >= MAX_SEGMENT_ID) {
      throw new WalError('WAL_LSN_EXHAUSTED', `segment ids are exhausted at ${segmentFileName(full.id)}`);
    }
    full.sealRequested = true;
    this.spans.segmentEnded(full.id);
    this.segments.push(newSegment(this.config.dir, full.id + 1, this.lsns.nextLsn));
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

  /** True when a drain round has something to do; `fsyncWanted` asks for an fsync of written bytes. */
  hasWork(fsyncWanted: boolean): boolean {
    for (let i = this.firstUnsealed(); i < this.segments.length; i++) {
      const segment = this.segments[i] as Segment;
      if (!segment.created || segment.sealRequested || (segment.staging?.stagedBytes ?? 0) > 0) return true;
    }
    const written = this.queue.writtenLsn;
    return this.queue.syncedLsn < written && this.fsyncDue(written, fsyncWanted);
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
        if (!segment.created) yield* this.createSegment(segment);
        yield* this.writeStaged(segment, forceFsync);
        if (!segment.sealRequested) break;
        if ((segment.staging?.stagedBytes ?? 0) > 0) continue; // staged while we wrote
        yield* this.sealSegment(segment);
      }
    } finally {
      this.busy = false;
    }
    const written = this.queue.writtenLsn;
    if (this.queue.syncedLsn < written && this.fsyncDue(written, forceFsync)) {
      yield* this.fsyncActive();
    }
  }

  private firstUnsealed(): number {
    let i = this.segments.length - 1;
    while (i > 0 && !(this.segments[i - 1] as Segment).sealed) i--;
    return i;
  }

  /**
   * Seals and writes the staged frames in one io call, fsyncing in the same
   * call when this is the active segment and the fsync is wanted anyway: one
   * hop off the event loop per batch in per-commit mode.
   */
  private *writeStaged(segment: Segment, forceFsync: boolean): IoProgram<void> {
    const chunk = segment.staging?.take() ?? null;
    if (chunk === null) return;
    const sync = !segment.sealRequested && this.fsyncDue(chunk.lastLsn, forceFsync);
    const file = segment.file;
    const wrote = yield* attempt('write', file, call('appendFrames', segment.fd as Fd, chunk.bytes, segment.writtenEnd, sync));
    if (wrote !== chunk.bytes.length) throw shortWrite(wrote, chunk.bytes.length, segment.writtenEnd, file);
    segment.writtenEnd += chunk.bytes.length;
    segment.staging?.recycle(chunk);
    this.queue.written(chunk.lastLsn);
    if (sync) this.markSynced(chunk.lastLsn);
  }

  private *createSegment(segment: Segment): IoProgram<void> {
    const spare = this.spareFd;
    this.spareFd = null;
    segment.fd =
      spare === null
        ? yield* createSegmentFile(this.fileConfig, segment.id, segment.baseLsn)
        : yield* adoptSpareFile(this.fileConfig, spare, segment.id, segment.baseLsn);
    segment.created = true;
  }

  /**
   * Whether a spare segment should be prepared now: none ready or in the
   * works, and the active segment at least half full. A small log never
   * carries an empty segment-sized file beside it (docs/FORMAT.md).
   */
  get wantsSpare(): boolean {
    const active = this.active;
    return this.spareFd === null && this.spareJob === null && active.created && active.stagedEnd >= this.config.segmentBytes / 2;
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
        if (!job.abandoned) yield* prepareSegmentFile(this.fileConfig, fd, file);
      } catch (error) {
        yield* call('close', fd);
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

  /** SPEC §6: written, fsync'd, header rewritten sealed, fsync'd, trimmed to its data. */
  private *sealSegment(segment: Segment): IoProgram<void> {
    const file = segment.file;
    const fd = segment.fd as Fd;
    yield* attempt('fsync before sealing', file, call('datasync', fd));
    this.markSynced(segment.lastLsn);
    const sealedHeader = encodeSegmentHeader({ baseLsn: segment.baseLsn, sealed: true }, this.io.crc32);
    yield* writeFully(fd, sealedHeader, 0, 'seal segment', file);
    yield* attempt('fsync sealed header', file, call('datasync', fd));
    yield* attempt('trim sealed segment', file, call('truncate', fd, segment.writtenEnd));
    segment.sealed = true;
    segment.fd = null;
    segment.staging = null;
    yield* this.closeFd(fd, file);
  }

  /** True when written bytes wait for an fsync. */
  get hasUnsyncedWrites(): boolean {
    return this.queue.syncedLsn < this.queue.writtenLsn;
  }

  /** The group timer's round: fsyncs what is written, and writes nothing staged. */
  *fsyncWritten(): IoProgram<void> {
    if (this.hasUnsyncedWrites) yield* this.fsyncActive();
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
    this.fsyncFd = fd;
    try {
      yield* attempt('fsync', segment.file, call('datasync', fd));
    } finally {
      this.fsyncFd = null;
      if (this.closeAfterFsync.delete(fd)) yield* call('close', fd);
    }
    this.markSynced(covered);
  }

  private markSynced(lsn: number): void {
    this.queue.durable(lsn);
    this.spans.settle(this.queue.syncedLsn);
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
    if (fd === this.fsyncFd) {
      this.closeAfterFsync.add(fd);
      return;
    }
    yield* attempt('close', file, call('close', fd));
  }

  private get fileConfig(): SegmentFileConfig {
    return { ...this.config, crc32: this.io.crc32 };
  }
}

export function newSegment(dir: string, id: number, baseLsn: number): Segment {
  return {
    id,
    file: segmentPath(dir, id),
    baseLsn,
    lastLsn: baseLsn - 1,
    sealed: false,
    sealRequested: false,
    fd: null,
    created: false,
    writtenEnd: HEADER_BYTES,
    stagedEnd: HEADER_BYTES,
    staging: null,
  };
}

interface Batch {
  events: readonly Uint8Array[];
  payloadBytes: number;
}

/** Splits events into MutationBatch payloads that each fit one frame (docs/DESIGN.md). */
function splitIntoBatches(events: readonly Uint8Array[]): Batch[] {
  const limit = MAX_FRAME_BYTES - FRAME_OVERHEAD;
  const whole = batchPayloadBytes(events);
  if (whole <= limit) return [{ events, payloadBytes: whole }];
  const batches: Batch[] = [];
  let start = 0;
  let bytes = BATCH_COUNT_BYTES;
  for (let i = 0; i < events.length; i++) {
    const entry = BATCH_ENTRY_OVERHEAD + (events[i] as Uint8Array).length;
    if (bytes + entry > limit && i > start) {
      batches.push({ events: events.slice(start, i), payloadBytes: bytes });
      start = i;
      bytes = BATCH_COUNT_BYTES;
    }
    bytes += entry;
  }
  batches.push({ events: events.slice(start), payloadBytes: bytes });
  return batches;
}
