import { CommitQueue } from './commit-queue.js';
import { WalError, toIoError } from './errors.js';
import { MAX_BATCHED_EVENT_BYTES, MAX_EVENT_BYTES, RecordKind } from './format/constants.js';
import { jsIo } from './io/js.js';
import { createNativeIo } from './io/native.js';
import { runAsync, runSync } from './io/program.js';
import type { LockToken, WalIo } from './io/types.js';
import { LsnAllocator } from './lsn.js';
import { checkLsnArgument, normalizeOptions, type NormalizedOptions } from './options.js';
import { recoverProgram, type Recovered } from './recover.js';
import { truncateProgram } from './truncate.js';
import { Tx, type TxHost } from './tx.js';
import type { TxSpans } from './tx-spans.js';
import type { CodecOption, CommitOptions, EventIn, EventOut, OpenResult, SyncMode, TxLsns, WalOptions, WalOptionsFor, WalStatus } from './types.js';
import { LogWriter } from './writer.js';

type Lifecycle = 'open' | 'closing' | 'closed';

function resolveIo(io: NormalizedOptions<unknown, unknown>['io']): WalIo {
  if (io === 'js') return jsIo;
  if (io === 'native') return createNativeIo();
  return io;
}

/**
 * A segmented write-ahead log, open for appending (SPEC §4). Obtain one with
 * `Wal.open` or `Wal.openSync`; the lifecycle is open → append/commit →
 * rotate → truncate → close, and `docs/DESIGN.md` explains each step.
 */
export class Wal<In = Uint8Array, Out = Buffer> {
  private readonly lsns: LsnAllocator;
  private readonly queue: CommitQueue;
  private readonly writer: LogWriter;
  private readonly spans: TxSpans;
  private readonly lock: LockToken;
  private readonly timer: NodeJS.Timeout | null;
  private lifecycle: Lifecycle = 'open';
  private lastCheckpointSnapshot: number;
  /** The async drain loop while it runs. */
  private draining: Promise<void> | null = null;
  private fsyncRequested = false;
  /** Truncations run one at a time. */
  private truncation: Promise<unknown> = Promise.resolve();
  private spareWork: Promise<void> = Promise.resolve();
  private truncating = false;
  private closed: Promise<void> | null = null;
  private readonly txHost: TxHost<In>;

  /** Opens (creating if needed) and recovers a log; `codec`, by name or object, types its events. */
  static open<C extends CodecOption = 'bytes'>(options: WalOptionsFor<C>): Promise<OpenResult<Wal<EventIn<C>, EventOut<C>>, EventOut<C>>>;
  static async open<In, Out>(options: WalOptions<In, Out>): Promise<OpenResult<Wal<In, Out>, Out>> {
    const normalized = normalizeOptions(options);
    const io = resolveIo(normalized.io);
    const recovered = await runAsync(io, recoverProgram(io, normalized));
    const wal = new Wal(io, normalized, recovered);
    wal.prepareSpareInBackground();
    return { wal, events: recovered.events, recovery: recovered.recovery };
  }

  static openSync<C extends CodecOption = 'bytes'>(options: WalOptionsFor<C>): OpenResult<Wal<EventIn<C>, EventOut<C>>, EventOut<C>>;
  static openSync<In, Out>(options: WalOptions<In, Out>): OpenResult<Wal<In, Out>, Out> {
    const normalized = normalizeOptions(options);
    const io = resolveIo(normalized.io);
    const recovered = runSync(io, recoverProgram(io, normalized));
    return { wal: new Wal(io, normalized, recovered), events: recovered.events, recovery: recovered.recovery };
  }

  private constructor(
    private readonly io: WalIo,
    private readonly options: NormalizedOptions<In, Out>,
    recovered: Recovered<Out>,
  ) {
    this.lsns = new LsnAllocator(recovered.nextLsn);
    this.queue = new CommitQueue(recovered.nextLsn - 1);
    this.spans = recovered.spans;
    this.lock = recovered.lock;
    this.lastCheckpointSnapshot = recovered.lastCheckpointSnapshot;
    this.writer = new LogWriter(
      io,
      { dir: options.dir, segmentBytes: options.segmentBytes, preallocation: options.preallocation },
      this.lsns,
      this.queue,
      this.spans,
      recovered.segments,
    );
    this.timer = options.syncMode === 'group' ? setInterval(() => this.groupTick(), options.groupIntervalMs) : null;
    this.timer?.unref();
    this.txHost = {
      append: (beginLsn, event) => this.stage(() => this.writer.stageMutation(beginLsn, this.encode(event, MAX_EVENT_BYTES))),
      appendBatch: (beginLsn, events) => {
        const payloads = this.encodeAll(events, 'appendBatch');
        if (payloads.length === 0) throw new WalError('WAL_INVALID_EVENT', 'tx.appendBatch() needs at least one event');
        return this.stage(() => this.writer.stageBatch(beginLsn, payloads));
      },
      commit: (beginLsn) => this.stage(() => this.writer.stageTxEnd(beginLsn, RecordKind.TxCommit)),
      abort: (beginLsn) => this.stage(() => this.writer.stageTxEnd(beginLsn, RecordKind.TxAbort)),
    };
  }

  // ---- state -------------------------------------------------------------

  get dir(): string {
    return this.options.dir;
  }

  get syncMode(): SyncMode {
    return this.options.syncMode;
  }

  /** Highest LSN known durable: fsync'd, or in 'none' mode written (SPEC §5). */
  get durableLsn(): number {
    return this.options.syncMode === 'none' ? this.queue.writtenLsn : this.queue.syncedLsn;
  }

  get nextLsn(): number {
    return this.lsns.nextLsn;
  }

  get activeSegmentId(): number {
    return this.writer.active.id;
  }

  get oldestSegmentId(): number {
    return (this.writer.segments[0] ?? this.writer.active).id;
  }

  /** The first failure that poisoned the log, or null. */
  get bgFailure(): string | null {
    return this.queue.failure?.message ?? null;
  }

  status(): WalStatus {
    return {
      dir: this.dir,
      syncMode: this.syncMode,
      durableLsn: this.durableLsn,
      nextLsn: this.nextLsn,
      activeSegmentId: this.activeSegmentId,
      oldestSegmentId: this.oldestSegmentId,
      bgFailure: this.bgFailure,
      closed: this.lifecycle !== 'open',
      openTransactions: this.spans.openCount(),
    };
  }

  // ---- appending ---------------------------------------------------------

  /**
   * Writes one transaction (TxBegin, MutationBatch, TxCommit) and resolves
   * per the sync mode (SPEC §5). LSNs are taken now, so call order is log order.
   */
  commit(events: readonly In[], options: CommitOptions = {}): Promise<TxLsns | null> {
    let lsns: TxLsns | null;
    try {
      lsns = this.stageCommit(events, 'commit');
    } catch (error) {
      return Promise.reject(error);
    }
    if (lsns === null) return Promise.resolve(null);
    const done =
      this.syncMode === 'per-commit' || options.durable === true
        ? this.queue.whenDurable(lsns.commitLsn, lsns)
        : this.queue.whenWritten(lsns.commitLsn, lsns);
    this.kick();
    return done;
  }

  /** `commit`, blocking until the same point. */
  commitSync(events: readonly In[]): TxLsns | null {
    this.assertIdle('commitSync');
    const lsns = this.stageCommit(events, 'commitSync');
    if (lsns !== null) this.drainSync(this.syncMode === 'per-commit');
    return lsns;
  }

  /** Starts a multi-step transaction; its records are buffered until flush/sync. */
  begin(): Tx<In> {
    const beginLsn = this.stage(() => this.writer.stageTxBegin());
    return new Tx(this.txHost, beginLsn);
  }

  /** Appends a Checkpoint record naming `snapshotLsn`; returns the record's LSN. */
  checkpointMarker(snapshotLsn: number): number {
    this.assertWritable();
    const snapshot = checkLsnArgument(snapshotLsn, 'snapshotLsn');
    const ownLsn = this.lsns.nextLsn;
    if (snapshot > ownLsn) {
      throw new WalError(
        'WAL_INVALID_OPTIONS',
        `invalid argument \`snapshotLsn\`: ${snapshot} points past the Checkpoint record itself (LSN ${ownLsn})`,
      );
    }
    if (snapshot < this.lastCheckpointSnapshot) {
      throw new WalError(
        'WAL_INVALID_OPTIONS',
        `invalid argument \`snapshotLsn\`: ${snapshot} is below the earlier Checkpoint's ${this.lastCheckpointSnapshot}`,
      );
    }
    const lsn = this.stage(() => this.writer.stageCheckpoint(snapshot));
    this.lastCheckpointSnapshot = snapshot;
    return lsn;
  }

  // ---- flushing ----------------------------------------------------------

  /** Writes buffered records, then does what the sync mode does after a commit. */
  flush(): Promise<void> {
    return this.waitFor(this.syncMode === 'per-commit' ? 'durable' : 'written');
  }

  flushSync(): void {
    this.assertIdle('flushSync');
    this.drainSync(this.syncMode === 'per-commit');
  }

  /** Writes buffered records and fsyncs them, whatever the mode. */
  sync(): Promise<void> {
    return this.waitFor('durable');
  }

  syncSync(): void {
    this.assertIdle('syncSync');
    this.drainSync(true);
  }

  /**
   * sync → fence = durable LSN (lowered below any transaction still in
   * progress) → writeSnapshot(fence) → Checkpoint(fence) → sync → truncate.
   * Resolves with the fence: reopen with `checkpointLsn: fence` and the snapshot.
   */
  async checkpoint(writeSnapshot: (fenceLsn: number) => unknown): Promise<number> {
    if (typeof writeSnapshot !== 'function') {
      throw new WalError('WAL_INVALID_OPTIONS', 'invalid argument `writeSnapshot`: expected a function');
    }
    await this.sync();
    const oldest = this.spans.oldestUnsettledBegin();
    const fence = Math.min(this.queue.syncedLsn, oldest === null ? Number.MAX_SAFE_INTEGER : oldest - 1);
    await writeSnapshot(fence);
    this.checkpointMarker(fence);
    await this.sync();
    await this.truncateUpTo(fence);
    return fence;
  }

  // ---- truncation --------------------------------------------------------

  /** Deletes old sealed segments wholly at or below `fenceLsn`; resolves with how many. */
  truncateUpTo(fenceLsn: number): Promise<number> {
    try {
      this.assertNotClosed();
      const fence = checkLsnArgument(fenceLsn, 'fenceLsn');
      const run = this.truncation.then(() => this.runTruncation(fence));
      this.truncation = run.catch(() => undefined);
      return run;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  truncateUpToSync(fenceLsn: number): number {
    this.assertNotClosed();
    const fence = checkLsnArgument(fenceLsn, 'fenceLsn');
    if (this.truncating) throw busy('truncateUpToSync');
    return runSync(this.io, truncateProgram(this.dir, this.writer.segments, this.spans, fence));
  }

  private async runTruncation(fence: number): Promise<number> {
    this.truncating = true;
    try {
      return await runAsync(this.io, truncateProgram(this.dir, this.writer.segments, this.spans, fence));
    } finally {
      this.truncating = false;
    }
  }

  // ---- closing -----------------------------------------------------------

  /**
   * Writes and fsyncs what is buffered, stops the timer, closes files and
   * releases the lock. Rejects if that final write or fsync fails, after
   * releasing the lock anyway. Closing twice is a no-op.
   */
  close(): Promise<void> {
    this.closed ??= this.closeAsync();
    return this.closed;
  }

  closeSync(): void {
    if (this.lifecycle !== 'open') return;
    // A poisoned log must still close (SPEC §7); only async work in flight blocks it.
    if (this.writer.busy || this.writer.preparingSpare || this.truncating) throw busy('closeSync');
    this.lifecycle = 'closing';
    this.stopTimer();
    let failure: unknown = null;
    if (this.queue.failure === null) {
      try {
        runSync(this.io, this.writer.drainRound(true));
      } catch (error) {
        failure = error;
        this.poison(error);
      }
    }
    try {
      runSync(this.io, this.writer.closeFiles());
    } catch (error) {
      failure ??= error;
    }
    this.io.sync.unlock(this.lock);
    this.lifecycle = 'closed';
    this.closed = Promise.resolve();
    if (failure !== null) throw closeFailure(failure);
  }

  [Symbol.dispose](): void {
    this.closeSync();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async closeAsync(): Promise<void> {
    this.lifecycle = 'closing';
    this.stopTimer();
    const poisonedBefore = this.queue.failure !== null;
    if (!poisonedBefore) this.kick(true);
    await this.draining;
    await this.truncation;
    await this.spareWork;
    let failure: unknown = poisonedBefore ? null : this.queue.failure;
    try {
      await runAsync(this.io, this.writer.closeFiles());
    } catch (error) {
      failure ??= error;
    }
    await this.io.async.unlock(this.lock);
    this.lifecycle = 'closed';
    if (failure !== null) throw closeFailure(failure);
  }

  private stopTimer(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }

  // ---- internals ---------------------------------------------------------

  private stageCommit(events: readonly In[], method: string): TxLsns | null {
    this.assertWritable();
    const payloads = this.encodeAll(events, method);
    return payloads.length === 0 ? null : this.writer.stageCommit(payloads);
  }

  /** Runs a staging step after the checks every append makes. */
  private stage<T>(step: () => T): T {
    this.assertWritable();
    return step();
  }

  private encodeAll(events: readonly In[], method: string): Uint8Array[] {
    if (!Array.isArray(events)) {
      throw new WalError('WAL_INVALID_EVENT', `${method}() takes an array of events, got ${typeof events}`);
    }
    return events.map((event, index) => this.encode(event, MAX_BATCHED_EVENT_BYTES, index));
  }

  private encode(event: In, limit: number, index?: number): Uint8Array {
    let bytes: unknown;
    try {
      bytes = this.options.codec.encode(event);
    } catch (error) {
      if (error instanceof WalError) {
        throw index === undefined ? error : new WalError(error.code, `${eventName(index)}: ${error.message}`, { cause: error });
      }
      throw new WalError('WAL_ENCODE', `${eventName(index)}: codec ${this.options.codec.name} failed: ${(error as Error)?.message}`, {
        cause: error,
      });
    }
    if (!(bytes instanceof Uint8Array)) {
      throw new WalError(
        'WAL_ENCODE',
        `${eventName(index)}: codec ${this.options.codec.name} returned ${typeof bytes}, not a Uint8Array`,
      );
    }
    if (bytes.length > limit) {
      throw new WalError('WAL_INVALID_EVENT', `${eventName(index)} is ${bytes.length} bytes, over the limit of ${limit} bytes`);
    }
    return bytes;
  }

  private waitFor(point: 'written' | 'durable'): Promise<void> {
    try {
      this.assertWritable();
    } catch (error) {
      return Promise.reject(error);
    }
    const lsn = this.writer.lastLsn;
    const done = point === 'durable' ? this.queue.whenDurable(lsn, undefined) : this.queue.whenWritten(lsn, undefined);
    this.kick(point === 'durable');
    return done;
  }

  /** Starts the async drain loop if it is not running (group commit happens here). */
  private kick(fsync = false): void {
    if (fsync) this.fsyncRequested = true;
    this.draining ??= this.drainLoop();
  }

  private async drainLoop(): Promise<void> {
    // Let the caller's synchronous burst finish first: its commits go out together.
    await null;
    try {
      while (this.queue.failure === null) {
        const force = this.fsyncRequested;
        this.fsyncRequested = false;
        if (!this.writer.hasWork(force)) break;
        await runAsync(this.io, this.writer.drainRound(force));
      }
    } catch (error) {
      this.poison(error);
    } finally {
      this.draining = null;
    }
    this.prepareSpareInBackground();
  }

  /** Keeps the next segment file ready, so a rotation never waits for creating and preallocating one. */
  private prepareSpareInBackground(): void {
    if (this.lifecycle !== 'open' || this.queue.failure !== null || !this.writer.wantsSpare) return;
    this.spareWork = runAsync(this.io, this.writer.prepareSpare()).catch((error: unknown) => {
      // The disk failed under the log's own files: stop as any failed write does (SPEC §7).
      this.poison(error);
    });
  }

  private drainSync(fsync: boolean): void {
    try {
      runSync(this.io, this.writer.drainRound(fsync));
    } catch (error) {
      throw this.poison(error);
    }
  }

  private groupTick(): void {
    if (this.queue.failure === null && this.writer.lastLsn > this.queue.syncedLsn) this.kick(true);
  }

  /** Latches a failure of the append path (SPEC §7); returns the error to throw. */
  private poison(error: unknown): WalError {
    this.queue.poison(error instanceof WalError ? error : toIoError(error, 'append'));
    return this.queue.poisonedError();
  }

  private assertNotClosed(): void {
    if (this.lifecycle !== 'open') {
      throw new WalError('WAL_CLOSED', `the log in ${this.dir} is closed`, { file: this.dir });
    }
  }

  private assertWritable(): void {
    this.assertNotClosed();
    if (this.queue.failure !== null) throw this.queue.poisonedError();
  }

  /** A blocking call cannot wait for async writes in flight (docs/DESIGN.md). */
  private assertIdle(method: string): void {
    this.assertWritable();
    if (this.writer.busy) throw busy(method);
  }
}

/** How an error message names the event: built only on the error path (encode runs per event). */
function eventName(index: number | undefined): string {
  return index === undefined ? 'event' : `event ${index}`;
}

function busy(method: string): WalError {
  return new WalError(
    'WAL_BUSY',
    `${method}() cannot run while an async write or truncation of this log is in flight; ` +
      'await the pending commit()/flush()/truncateUpTo() first, or use only one of the two APIs',
  );
}

function closeFailure(error: unknown): WalError {
  const cause = error instanceof WalError ? error : toIoError(error, 'close');
  return new WalError('WAL_IO', `close: the final write or fsync failed, the lock is released: ${cause.message}`, {
    cause,
    errno: cause.errno,
    syscall: cause.syscall,
    file: cause.file,
  });
}
