import { codecs } from './codec.js';
import { CommitQueue } from './commit-queue.js';
import { WalError, toIoError } from './errors.js';
import { MAX_BATCHED_EVENT_BYTES, MAX_EVENT_BYTES, RecordKind } from './format/constants.js';
import { resolveIo } from './io/resolve.js';
import { runAsync, runSync } from './io/program.js';
import type { LockToken, WalIo } from './io/types.js';
import { LsnAllocator } from './lsn.js';
import { MetricsRecorder, type WalMetrics } from './metrics.js';
import { checkCommitOptions, checkLsnArgument, normalizeOptions, parseOptions, resolveCodec, walReadOptions, type NormalizedOptions } from './options.js';
import type { StreamConfig } from './read/log-stream.js';
import { transactionsOf, type CommittedTransaction } from './readers.js';
import { recoverProgram, type Recovered } from './recover.js';
import { CommitGate } from './commit-gate.js';
import { Retention, type RetentionHold } from './retention.js';
import { Scheduler } from './scheduler.js';
import { truncateProgram } from './truncate.js';
import { Tx, type TxHost } from './tx.js';
import type { TxSpans } from './tx-spans.js';
import type {
  CloseReport,
  Codec,
  CodecOption,
  CommitOptions,
  EventIn,
  EventOut,
  OpenResult,
  SyncMode,
  TxLsns,
  WalOptions,
  WalOptionsFor,
  WalReadOptions,
  WalStatus,
} from './types.js';
import { LogWriter } from './writer.js';
import { RecentWrites } from './recent-writes.js';
import { RecordStager } from './record-stager.js';

type Lifecycle = 'open' | 'closing' | 'closed';

/**
 * A segmented write-ahead log, open for appending (README, "API"). Obtain one with
 * `Wal.open` or `Wal.openSync`; the lifecycle is open → append/commit →
 * rotate → truncate → close, and `docs/DESIGN.md` explains each step.
 */
export class Wal<In = Uint8Array, Out = Buffer> {
  private readonly lsns: LsnAllocator;
  private readonly queue: CommitQueue;
  private readonly metricsRecorder: MetricsRecorder | null;
  /** What was just written, for in-process readers (src/recent-writes.ts). */
  private readonly recentWrites = new RecentWrites();
  private readonly stager: RecordStager;
  private readonly writer: LogWriter;
  private readonly scheduler: Scheduler;
  private readonly retention: Retention;
  private readonly gate = new CommitGate();
  private readonly spans: TxSpans;
  private readonly lock: LockToken;
  private lifecycle: Lifecycle = 'open';
  private lastCheckpointSnapshot: number;
  /** Truncations run one at a time. */
  private truncation: Promise<unknown> = Promise.resolve();
  private truncating = false;
  /** What the first close reported; a second close reports the same. */
  private closeOutcome: { report: CloseReport } | { error: WalError } | null = null;
  private closing: Promise<CloseReport> | null = null;
  private readonly failureListeners = new Set<(error: WalError) => void>();
  private readonly txHost: TxHost<In>;
  private readonly recoveredLogId: string;

  /** Opens (creating if needed) and recovers a log; `codec`, by name or object, types its events. */
  static open<C extends CodecOption = 'bytes'>(options: WalOptionsFor<C>): Promise<OpenResult<Wal<EventIn<C>, EventOut<C>>, EventOut<C>>>;
  static async open<In, Out>(options: WalOptions<In, Out>): Promise<OpenResult<Wal<In, Out>, Out>> {
    const normalized = normalizeOptions(options);
    const io = resolveIo(normalized.io);
    const recovered = await runAsync(io, recoverProgram(io, normalized));
    const wal = new Wal(io, normalized, recovered);
    wal.scheduler.prepareSpareInBackground();
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
    this.recoveredLogId = recovered.recovery.logId as string;
    this.queue = new CommitQueue(recovered.nextLsn - 1);
    this.spans = recovered.spans;
    this.lock = recovered.lock;
    this.lastCheckpointSnapshot = recovered.lastCheckpointSnapshot;
    this.metricsRecorder = options.metrics ? new MetricsRecorder() : null;
    this.stager = new RecordStager(options.dir, options.segmentBytes, this.lsns, this.spans, recovered.segments, options.replica);
    this.writer = new LogWriter(
      io,
      { dir: options.dir, segmentBytes: options.segmentBytes, preallocation: options.preallocation },
      this.queue,
      this.spans,
      recovered.segments,
      this.metricsRecorder,
      this.recentWrites,
    );
    this.retention = new Retention(recovered.segments);
    this.scheduler = new Scheduler(
      io,
      this.writer,
      this.queue,
      options.syncMode === 'group' ? options.groupIntervalMs : null,
      options.writeOnLoop,
      (poisoned) => {
        this.gate.refuseAll(poisoned);
        this.announceFailure(poisoned);
      },
    );
    this.txHost = {
      append: (beginLsn, event) => this.stage(() => this.stager.stageMutation(beginLsn, this.encode(event, MAX_EVENT_BYTES))),
      appendBatch: (beginLsn, events) => {
        const payloads = this.encodeAll(events, 'appendBatch');
        if (payloads.length === 0) throw new WalError('WAL_INVALID_EVENT', 'tx.appendBatch() needs at least one event');
        return this.stage(() => this.stager.stageBatch(beginLsn, payloads));
      },
      commit: (beginLsn, options) => {
        const { durable = false } = checkCommitOptions(options, 'tx.commit');
        const commitLsn = this.stage(() => this.stager.stageTxEnd(beginLsn, RecordKind.TxCommit));
        return this.acknowledge({ beginLsn, commitLsn }, durable);
      },
      commitSync: (beginLsn, options) => {
        const { durable = false } = checkCommitOptions(options, 'tx.commitSync');
        this.assertIdle('tx.commitSync');
        const commitLsn = this.stager.stageTxEnd(beginLsn, RecordKind.TxCommit);
        this.scheduler.writeNow(this.syncMode === 'per-commit' || durable);
        return { beginLsn, commitLsn };
      },
      abort: (beginLsn) => this.stage(() => this.stager.stageTxEnd(beginLsn, RecordKind.TxAbort)),
    };
  }

  // ---- state -------------------------------------------------------------

  get dir(): string {
    return this.options.dir;
  }

  /** The log's identity: 32 hex digits, made when the log was created (docs/FORMAT.md). */
  get logId(): string {
    return this.recoveredLogId;
  }

  get syncMode(): SyncMode {
    return this.options.syncMode;
  }

  /** Highest LSN known durable: fsync'd, or in 'none' mode written (docs/DURABILITY.md, "Sync modes"). */
  get durableLsn(): number {
    return this.options.syncMode === 'none' ? this.queue.writtenLsn : this.queue.durableLsn;
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
      logId: this.logId,
      syncMode: this.syncMode,
      durableLsn: this.durableLsn,
      nextLsn: this.nextLsn,
      activeSegmentId: this.activeSegmentId,
      oldestSegmentId: this.oldestSegmentId,
      oldestLsn: (this.writer.segments[0] ?? this.writer.active).baseLsn,
      lastCheckpointLsn: this.lastCheckpointSnapshot,
      bgFailure: this.bgFailure,
      closed: this.lifecycle !== 'open',
      openTransactions: this.spans.openCount(),
      commitHolds: this.gate.reasons,
      waitingCommits: this.gate.waitingCount,
    };
  }

  // ---- appending ---------------------------------------------------------

  /**
   * Writes one transaction (TxBegin, MutationBatch, TxCommit) and resolves
   * per the sync mode (docs/DURABILITY.md, "Sync modes"). LSNs are taken now, so call order is log order.
   */
  commit(events: readonly In[], options?: CommitOptions): Promise<TxLsns | null> {
    try {
      const { durable = false } = checkCommitOptions(options, 'commit');
      this.assertWritable();
      this.assertOwnWrites();
      const payloads = this.encodeAll(events, 'commit');
      if (payloads.length === 0) return Promise.resolve(null);
      if (this.gate.admits()) return this.acknowledge(this.stager.stageCommit(payloads), durable);
      // Held (backpressure): the bytes are copied now, the caller may reuse its buffers.
      const copies = payloads.map((payload) => Uint8Array.from(payload));
      return this.gate.wait('commit', () => {
        this.assertWritable();
        return this.acknowledge(this.stager.stageCommit(copies), durable);
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** `commit`, blocking until the same point. */
  commitSync(events: readonly In[], options?: CommitOptions): TxLsns | null {
    const { durable = false } = checkCommitOptions(options, 'commitSync');
    this.assertIdle('commitSync');
    this.assertAdmitted('commitSync');
    const lsns = this.stageCommit(events, 'commitSync');
    if (lsns !== null) this.scheduler.writeNow(this.syncMode === 'per-commit' || durable);
    return lsns;
  }

  /**
   * A replica's write (segwal/jetstream's followStream): one whole transaction
   * of the source log, at the source's LSNs, with the stream sequence of the
   * message that carried it; resolves at the sync mode's point, as a commit.
   * Only on a log opened with `replica: true`.
   */
  appendReplicated(tx: { beginLsn: number; commitLsn: number; events: readonly Uint8Array[] }, streamSeq: number): Promise<TxLsns> {
    try {
      this.assertWritable();
      if (!this.options.replica) {
        throw new WalError('WAL_INVALID_OPTIONS', `appendReplicated(): the log in ${this.dir} was not opened as a replica (replica: true)`);
      }
      return this.acknowledge(this.stager.stageReplicated(checkReplicatedTx(tx), checkLsnArgument(streamSeq, 'streamSeq')), false);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Keeps truncation (`truncateUpTo`, `checkpoint`) from deleting records at
   * or above `fromLsn` until released: what a shipper has not had
   * acknowledged yet (docs/REPLICATION.md, "Retention and backpressure").
   */
  retain(fromLsn: number): RetentionHold {
    this.assertNotClosed();
    return this.retention.hold(checkLsnArgument(fromLsn, 'fromLsn'));
  }

  /**
   * Holds new transactions until the returned function is called: `commit()`
   * waits (and fails with WAL_BACKPRESSURE after `timeoutMs`), `commitSync()`
   * and `begin()` fail with it at once. Backpressure for a shipper that falls behind.
   */
  holdCommits(reason: string, timeoutMs: number): () => void {
    this.assertNotClosed();
    if (typeof reason !== 'string' || reason.length === 0) throw new WalError('WAL_INVALID_OPTIONS', 'invalid argument `reason`: expected a non-empty string');
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 2 ** 31 - 1) {
      throw new WalError('WAL_INVALID_OPTIONS', `invalid argument \`timeoutMs\`: expected an integer from 1 to 2^31-1, got ${String(timeoutMs)}`);
    }
    return this.gate.hold(reason, timeoutMs);
  }

  /**
   * Runs `check` before each new transaction is admitted; it may call
   * `holdCommits` there, and that transaction is then held. For a limit that
   * must hold at the commit that crosses it (a shipper's `maxUnshippedBytes`).
   * Returns a function that removes the check.
   */
  checkBeforeCommits(check: () => void): () => void {
    this.assertNotClosed();
    if (typeof check !== 'function') throw new WalError('WAL_INVALID_OPTIONS', 'invalid argument `check`: expected a function');
    return this.gate.addCheck(check);
  }

  /** Subscribes to the first failure that poisons the log (docs/DURABILITY.md, "Poisoning"). */
  on(event: 'failure', listener: (error: WalError) => void): this {
    this.failureListeners.add(checkListener(event, listener));
    return this;
  }

  off(event: 'failure', listener: (error: WalError) => void): this {
    this.failureListeners.delete(checkListener(event, listener));
    return this;
  }

  /** Starts a multi-step transaction; its records are buffered until its commit, a flush or a sync. */
  begin(): Tx<In> {
    this.assertAdmitted('begin');
    const beginLsn = this.stage(() => this.stager.stageTxBegin());
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
    const lsn = this.stage(() => this.stager.stageCheckpoint(snapshot));
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
    this.scheduler.writeNow(this.syncMode === 'per-commit');
  }

  /** Writes buffered records and fsyncs them, whatever the mode. */
  sync(): Promise<void> {
    return this.waitFor('durable');
  }

  syncSync(): void {
    this.assertIdle('syncSync');
    this.scheduler.writeNow(true);
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
    this.assertOwnWrites();
    await this.sync();
    const oldest = this.spans.oldestLiveBegin();
    const fence = Math.min(this.queue.durableLsn, oldest === null ? Number.MAX_SAFE_INTEGER : oldest - 1);
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
    return this.truncated(runSync(this.io, truncateProgram(this.dir, this.writer.segments, this.spans, this.retention.limit(fence))));
  }

  private async runTruncation(fence: number): Promise<number> {
    this.truncating = true;
    try {
      return this.truncated(await runAsync(this.io, truncateProgram(this.dir, this.writer.segments, this.spans, this.retention.limit(fence))));
    } finally {
      this.truncating = false;
    }
  }

  private truncated(segments: number): number {
    this.metricsRecorder?.truncated(segments);
    return segments;
  }

  // ---- observing ---------------------------------------------------------

  /**
   * The log's figures since open, for a dashboard (docs/OPERATIONS.md): cheap
   * enough to call every second, and after close (the last figures). Throws
   * WAL_INVALID_OPTIONS when the log was opened with `metrics: false`.
   */
  metrics(): WalMetrics {
    if (this.metricsRecorder === null) {
      throw new WalError('WAL_INVALID_OPTIONS', 'wal.metrics() needs the metrics option on: this log was opened with metrics: false');
    }
    return this.metricsRecorder.read({ commitsStaged: this.stager.commitsStaged, poisoned: this.queue.failure !== null });
  }

  // ---- reading -----------------------------------------------------------

  /**
   * This log's committed transactions in commit order, each handed over once
   * it is durable (`durableLsn`), woken by the log's own progress rather than
   * by polling, until `signal` aborts or the log closes. For a consumer in
   * this process that ships what it reads: nothing it yields can be erased by
   * a power cut. Ends with WAL_POISONED when the log is poisoned and no more
   * transactions can become durable.
   */
  readTransactions<C extends CodecOption>(options: WalReadOptions & { codec: C }): AsyncGenerator<CommittedTransaction<EventOut<C>>>;
  readTransactions(options?: WalReadOptions): AsyncGenerator<CommittedTransaction<Out>>;
  readTransactions(options: WalReadOptions & { codec?: CodecOption } = {}): AsyncGenerator<CommittedTransaction<unknown>> {
    const given = parseOptions(walReadOptions, options, 'wal.readTransactions');
    this.assertNotClosed();
    // An fsync while the reader reads, or while its consumer holds what it handed over, wakes no one; a
    // wait begun after it would miss it, and the last commit for a while would sit unread. So a wait
    // returns at once when the log progressed since the last one ended, and the reader reads again.
    let seen = this.queue.progressCount;
    const waitForMore = async (signal: AbortSignal | undefined) => {
      if (this.queue.progressCount === seen) await this.progress(signal);
      seen = this.queue.progressCount;
    };
    const config: StreamConfig = {
      io: this.io,
      dir: this.dir,
      fromLsn: given.fromLsn ?? 'marker',
      scanFrom: given.scanFromLsn === undefined ? null : { lsn: given.scanFromLsn, ifTruncated: 'refuse' },
      recordsOnly: false,
      follow: true,
      signal: given.signal,
      waitForMore,
      syncReads: false,
      limit: () => this.durableLsn,
      ended: () => this.lifecycle === 'closed',
      recent: this.recentWrites,
    };
    return transactionsOf(config, given.codec === undefined ? this.options.codec : resolveCodec(given.codec));
  }

  /** Resolves at the log's next fsync or close (or when `signal` aborts): what moves `durableLsn`; throws once it is poisoned. */
  private progress(signal: AbortSignal | undefined): Promise<void> {
    if (this.queue.failure !== null) return Promise.reject(this.queue.poisonedError());
    if (this.lifecycle === 'closed' || signal?.aborted === true) return Promise.resolve();
    if (signal === undefined) return this.queue.progress();
    return new Promise((resolve) => {
      const done = () => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      signal.addEventListener('abort', done, { once: true });
      void this.queue.progress().then(done);
    });
  }

  // ---- closing -----------------------------------------------------------

  /**
   * Writes and fsyncs what is buffered, stops the timer, closes files and
   * releases the lock, then resolves with what was dropped. On a poisoned log,
   * or when that final write or fsync fails, it still releases the lock and
   * then rejects with WAL_POISONED: a close that resolves means everything
   * acknowledged is durable. A second close reports the same outcome.
   */
  close(): Promise<CloseReport> {
    this.closing ??= this.closeOutcome === null ? this.closeAsync() : outcomeAsPromise(this.closeOutcome);
    return this.closing;
  }

  /** `close`, blocking. Never refused because of work the caller did not start (the timer, the spare segment). */
  closeSync(): CloseReport {
    if (this.closeOutcome !== null) return unwrap(this.closeOutcome);
    // Only async work the caller started and did not await blocks it.
    if (this.writer.busy || this.truncating) throw busy('closeSync');
    this.lifecycle = 'closing';
    this.gate.refuseAll(this.closedError());
    const dropped = this.spans.openCount();
    let closeError: unknown = null;
    try {
      this.scheduler.stopNow();
      if (this.queue.failure === null) this.scheduler.writeNow(true);
    } catch (error) {
      if (!(error instanceof WalError && error.code === 'WAL_POISONED')) closeError = error;
    }
    try {
      runSync(this.io, this.writer.closeFiles());
    } catch (error) {
      closeError ??= error;
    }
    let unlockError: unknown = null;
    try {
      this.io.sync.unlock(this.lock);
    } catch (error) {
      unlockError = error;
    }
    return unwrap(this.finishClose(dropped, closeError, unlockError));
  }

  [Symbol.dispose](): void {
    this.closeSync();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async closeAsync(): Promise<CloseReport> {
    this.lifecycle = 'closing';
    this.gate.refuseAll(this.closedError());
    const dropped = this.spans.openCount();
    if (this.queue.failure === null) this.scheduler.requestWrite(true);
    await this.scheduler.stop();
    await this.truncation;
    let closeError: unknown = null;
    try {
      await runAsync(this.io, this.writer.closeFiles());
    } catch (error) {
      closeError = error;
    }
    let unlockError: unknown = null;
    try {
      await this.io.async.unlock(this.lock);
    } catch (error) {
      unlockError = error;
    }
    return unwrap(this.finishClose(dropped, closeError, unlockError));
  }

  /**
   * The outcome of a close whose files are closed and whose lock was let go.
   * The Wal is closed whatever failed (readers end, a second close reports
   * the same); a failed release of the lock is reported like any failure of
   * close, and heard as a warning when another failure is the one reported.
   */
  private finishClose(dropped: number, closeError: unknown, unlockError: unknown): { report: CloseReport } | { error: WalError } {
    this.lifecycle = 'closed';
    this.queue.notifyProgress(); // in-process readers end
    if (dropped > 0) {
      process.emitWarning(
        `segwal: the log in ${this.dir} was closed with ${dropped} transaction(s) from wal.begin() neither committed nor aborted; replay drops them`,
        { code: 'SEGWAL_OPEN_TRANSACTIONS_DROPPED' },
      );
    }
    const failure = this.queue.failure;
    // The lock may still be held until the process exits: flock and the pid file's owner both end with it.
    const unlockFailure =
      unlockError === null
        ? null
        : closeFailure(unlockError, `releasing the lock on ${this.dir} failed (the files are closed; the lock lasts at most as long as this process)`, 'unlock');
    if (unlockFailure !== null && (failure !== null || closeError !== null)) {
      process.emitWarning(unlockFailure.message, { code: 'SEGWAL_LOCK_RELEASE_FAILED' });
    }
    this.closeOutcome =
      failure !== null
        ? { error: this.queue.poisonedError() }
        : closeError !== null
          ? { error: closeFailure(closeError, 'the final write or fsync failed, the lock is released', 'close') }
          : unlockFailure !== null
            ? { error: unlockFailure }
            : { report: { droppedTransactions: dropped } };
    return this.closeOutcome;
  }

  // ---- failures --------------------------------------------------------------

  /**
   * The first failure reaches every subscriber; with none, a process warning
   * carries it (nothing fails unheard). Delivered in a microtask: right after
   * the failure, yet never inside the write path that is failing.
   */
  private announceFailure(poisoned: WalError): void {
    queueMicrotask(() => {
      if (this.failureListeners.size === 0) {
        process.emitWarning(`segwal: ${poisoned.message}`, { code: 'SEGWAL_POISONED', detail: `log directory: ${this.dir}` });
        return;
      }
      for (const listener of this.failureListeners) listener(poisoned);
    });
  }

  // ---- internals ---------------------------------------------------------

  private stageCommit(events: readonly In[], method: string): TxLsns | null {
    this.assertWritable();
    this.assertOwnWrites();
    const payloads = this.encodeAll(events, method);
    return payloads.length === 0 ? null : this.stager.stageCommit(payloads);
  }

  /** Runs a staging step after the checks every append makes. */
  private stage<T>(step: () => T): T {
    this.assertWritable();
    this.assertOwnWrites();
    return step();
  }

  /** A replica takes only what it replicates: its LSNs are its source's. */
  private assertOwnWrites(): void {
    if (this.options.replica) {
      throw new WalError(
        'WAL_INVALID_OPTIONS',
        `the log in ${this.dir} was opened as a replica: it takes only appendReplicated(); open it without \`replica\` to promote it`,
      );
    }
  }

  private encodeAll(events: readonly In[], method: string): readonly Uint8Array[] {
    if (!Array.isArray(events)) {
      throw new WalError('WAL_INVALID_EVENT', `${method}() takes an array of events, got ${typeof events}`);
    }
    // The bytes codec hands each event over as it is: the caller's array is staged itself (its bytes are
    // copied before the call returns), not mapped into a new one. Anything it would refuse goes the long way.
    if (this.options.codec === (codecs.bytes as Codec<unknown, unknown>) && allBatchableBytes(events)) return events as readonly Uint8Array[];
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
    const lsn = this.stager.lastLsn;
    const done = point === 'durable' ? this.queue.whenDurable(lsn, undefined) : this.queue.whenWritten(lsn, undefined);
    this.scheduler.requestWrite(point === 'durable');
    return done;
  }

  /** Resolves with `lsns` at the point the sync mode (or `durable`) promises for a commit (docs/DURABILITY.md, "Sync modes"). */
  private acknowledge(lsns: TxLsns, durable: boolean): Promise<TxLsns> {
    const done =
      this.syncMode === 'per-commit' || durable ? this.queue.whenDurable(lsns.commitLsn, lsns) : this.queue.whenWritten(lsns.commitLsn, lsns);
    this.scheduler.requestWrite(false);
    return done;
  }

  private assertNotClosed(): void {
    if (this.lifecycle !== 'open') throw this.closedError();
  }

  private closedError(): WalError {
    return new WalError('WAL_CLOSED', `the log in ${this.dir} is closed`, { file: this.dir });
  }

  private assertWritable(): void {
    this.assertNotClosed();
    if (this.queue.failure !== null) throw this.queue.poisonedError();
  }

  /** A new transaction that cannot wait: refused while commits are held. */
  private assertAdmitted(method: string): void {
    this.assertWritable();
    if (!this.gate.admits()) throw this.gate.refusal(method, 'only commit() waits for the holds to end');
  }

  /** A blocking call cannot wait for async writes in flight (docs/DESIGN.md). */
  private assertIdle(method: string): void {
    this.assertWritable();
    if (this.writer.busy) throw busy(method);
  }
}

/**
 * A replicated transaction, checked whole before any of it is staged: its LSNs
 * become the record's and the next LSN's as they are, so a NaN or 2^53 would
 * leave a frame no open accepts. Its order against the log is the stager's to check.
 */
function checkReplicatedTx(tx: unknown): { beginLsn: number; commitLsn: number; events: readonly Uint8Array[] } {
  if (typeof tx !== 'object' || tx === null) {
    throw new WalError('WAL_INVALID_OPTIONS', `invalid argument \`tx\`: expected { beginLsn, commitLsn, events }, got ${tx === null ? 'null' : typeof tx}`);
  }
  const { beginLsn, commitLsn, events } = tx as Record<string, unknown>;
  for (const [name, lsn] of [['beginLsn', beginLsn], ['commitLsn', commitLsn]] as const) {
    if (!Number.isSafeInteger(lsn) || (lsn as number) < 1) {
      throw new WalError('WAL_INVALID_OPTIONS', `invalid argument \`tx.${name}\`: expected an integer LSN in 1..2^53-1, got ${String(lsn)}`);
    }
  }
  if (!Array.isArray(events)) throw new WalError('WAL_INVALID_EVENT', `appendReplicated() takes an array of events, got ${typeof events}`);
  events.forEach((event: unknown, index) => {
    if (!(event instanceof Uint8Array)) {
      throw new WalError('WAL_INVALID_EVENT', `event ${index}: appendReplicated() takes a Uint8Array, got ${event === null ? 'null' : typeof event}`);
    }
  });
  return { beginLsn: beginLsn as number, commitLsn: commitLsn as number, events: events as Uint8Array[] };
}

/** Every event a Uint8Array within the size of a batched event: what the bytes codec takes unchanged. */
function allBatchableBytes(events: readonly unknown[]): boolean {
  for (const event of events) if (!(event instanceof Uint8Array) || event.length > MAX_BATCHED_EVENT_BYTES) return false;
  return true;
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

function checkListener(event: unknown, listener: unknown): (error: WalError) => void {
  if (event !== 'failure') {
    throw new WalError('WAL_INVALID_OPTIONS', `invalid argument \`event\`: a Wal emits only 'failure', not ${String(event)}`);
  }
  if (typeof listener !== 'function') throw new WalError('WAL_INVALID_OPTIONS', 'invalid argument `listener`: expected a function');
  return listener as (error: WalError) => void;
}

function outcomeAsPromise(outcome: { report: CloseReport } | { error: WalError }): Promise<CloseReport> {
  return 'error' in outcome ? Promise.reject(outcome.error) : Promise.resolve(outcome.report);
}

function unwrap(outcome: { report: CloseReport } | { error: WalError }): CloseReport {
  if ('error' in outcome) throw outcome.error;
  return outcome.report;
}

/** A failure of close: `what` failed (the syscall `action` when `error` is raw), told as WAL_IO with its cause. */
function closeFailure(error: unknown, what: string, action: string): WalError {
  const cause = error instanceof WalError ? error : toIoError(error, action);
  return new WalError('WAL_IO', `close: ${what}: ${cause.message}`, {
    cause,
    errno: cause.errno,
    syscall: cause.syscall,
    file: cause.file,
  });
}
