import type { CommitQueue } from './commit-queue.js';
import { WalError, toIoError } from './errors.js';
import { runAsync, runSync } from './io/program.js';
import type { WalIo } from './io/types.js';
import type { LogWriter } from './writer.js';

/**
 * When the log writes and fsyncs, and what happens when that fails
 * (docs/DESIGN.md, "Writing"; docs/DURABILITY.md):
 *   - the async drain loop: a caller's commit, flush or sync asks for a write;
 *     every commit staged while one round is in flight goes out in the next
 *     round (group commit);
 *   - writes on the loop: in sync modes group and none, a batch that nobody
 *     waits to see fsync'd is written from the event loop at the end of the
 *     tick that staged it, with no hop to the thread pool (docs/DESIGN.md,
 *     "Writes on the event loop"); every fsync stays off the loop;
 *   - the group timer, which only fsyncs what is already written: records a
 *     caller staged without asking for a write wait for that caller;
 *   - the spare segment, prepared in the background;
 *   - the blocking drain of the *Sync API;
 *   - the poison decision: the first failure of any of these latches.
 */
/**
 * The most staged bytes one write on the loop takes: a copy into the page
 * cache costs about 0.1 µs per KiB here, so a batch this size holds the loop
 * for tens of µs. A larger batch takes the hop.
 */
const LOOP_WRITE_MAX_BYTES = 256 * 1024;

export class Scheduler {
  private draining: Promise<void> | null = null;
  /** The pending write on the loop (setImmediate), if one is due. */
  private loopWrite: NodeJS.Immediate | null = null;
  private writeWanted = false;
  private forceFsync = false;
  private spareWork: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout | null;
  private stopped = false;

  constructor(
    private readonly io: WalIo,
    private readonly writer: LogWriter,
    private readonly queue: CommitQueue,
    /** Group mode's fsync interval; null in the other modes, which have no timer. */
    groupIntervalMs: number | null,
    /** Batches nobody waits to see fsync'd are written on the event loop (sync modes group and none). */
    private readonly writesOnLoop: boolean,
    /** Told once, when the first failure poisons the log. */
    private readonly onPoisoned: (poisoned: WalError) => void,
  ) {
    this.timer = groupIntervalMs === null ? null : setInterval(() => this.groupTick(), groupIntervalMs);
    this.timer?.unref();
  }

  /**
   * A caller's write: what is staged goes out on the loop at the end of this
   * tick when it can (`writesOnLoop`), else in the async loop; and is fsync'd
   * too when `fsync`.
   */
  requestWrite(fsync: boolean): void {
    this.writeWanted = true;
    if (fsync) this.forceFsync = true;
    // setImmediate, not a microtask: the loop runs its timers and io between
    // batches, and every commit of this tick is staged before the write.
    if (this.writesOnLoop && !fsync) this.loopWrite ??= setImmediate(() => this.writeOnLoop());
    else this.draining ??= this.drainLoop();
  }

  /** The *Sync API: writes what is staged on the calling thread, and fsyncs it when `fsync`. Throws WAL_POISONED. */
  writeNow(fsync: boolean): void {
    try {
      if (!this.writer.canWriteInOneCall(Number.POSITIVE_INFINITY)) runSync(this.io, this.writer.drainRound(fsync));
      else if (!this.writer.writeActiveNow(fsync)) this.writer.startWritebackIfDue();
    } catch (error) {
      throw this.poison(error);
    }
  }

  /** Keeps the next segment file ready, so a rotation never waits for creating and preallocating one. */
  prepareSpareInBackground(): void {
    if (this.stopped || this.queue.failure !== null || !this.writer.wantsSpare) return;
    this.spareWork = runAsync(this.io, this.writer.prepareSpare()).catch((error: unknown) => {
      // The disk failed under the log's own files: stop as any failed write does (docs/DURABILITY.md, "Poisoning").
      this.poison(error);
    });
  }

  /** The immediate: the staged bytes, written on the loop when nothing needs the hop; what does goes to the async loop. */
  private writeOnLoop(): void {
    this.loopWrite = null;
    if (this.stopped || this.queue.failure !== null) return;
    try {
      this.writeStagedOnLoop();
    } catch (error) {
      this.poison(error);
      return;
    }
    if (this.writer.hasWork(false)) this.draining ??= this.drainLoop();
  }

  /** Writes the staged bytes from the loop if they may go there: one call, and no fsync due. Throws what the write throws. */
  private writeStagedOnLoop(): void {
    if (!this.writesOnLoop || !this.writer.canWriteInOneCall(LOOP_WRITE_MAX_BYTES) || this.writer.stagedFsyncDue(false)) return;
    this.writer.writeActiveNow(false);
    this.prepareSpareInBackground();
  }

  /** For close(): no more timer or background work; resolves once everything in flight has settled. */
  async stop(): Promise<void> {
    this.stopTimer();
    await this.draining;
    await this.spareWork;
  }

  /**
   * For closeSync(), which cannot wait: no more timer or background work, and
   * the spare segment being prepared is abandoned (a blocking close must never
   * fail because of work the caller did not start).
   */
  stopNow(): void {
    this.stopTimer();
    runSync(this.io, this.writer.abandonSpare());
  }

  /** Latches the first failure of the write path (docs/DURABILITY.md, "Poisoning"); returns the WAL_POISONED error to throw. */
  poison(error: unknown): WalError {
    if (this.queue.failure === null) {
      this.queue.poison(error instanceof WalError ? error : toIoError(error, 'append'));
      this.onPoisoned(this.queue.poisonedError());
    }
    return this.queue.poisonedError();
  }

  private stopTimer(): void {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    if (this.loopWrite !== null) clearImmediate(this.loopWrite);
    this.loopWrite = null;
  }

  private groupTick(): void {
    if (this.queue.failure !== null || !this.writer.hasNonDurableWrites) return;
    this.forceFsync = true;
    this.draining ??= this.drainLoop();
  }

  private async drainLoop(): Promise<void> {
    // Let the caller's synchronous burst finish first: its commits go out together.
    await null;
    try {
      while (this.queue.failure === null) {
        const write = this.writeWanted;
        const fsync = this.forceFsync;
        this.writeWanted = false;
        this.forceFsync = false;
        // What may go out on the loop does so now; the hop is left for what needs an fsync
        // (forced, or a durable waiter), a segment to create or seal, or a large batch.
        if (write) this.writeStagedOnLoop();
        // A rotation adopts the spare being prepared, once ready, instead of preparing a file of its own.
        if (write && this.writer.spareComing) await this.spareWork;
        if (write && this.writer.hasWork(fsync)) await runAsync(this.io, this.writer.drainRound(fsync));
        else if (fsync && this.writer.hasNonDurableWrites) await runAsync(this.io, this.writer.fsyncWritten());
        else break;
        // Under a steady stream of commits this loop never ends: check after every round, not only at the end.
        this.prepareSpareInBackground();
      }
    } catch (error) {
      this.poison(error);
    } finally {
      this.draining = null;
    }
    this.prepareSpareInBackground();
  }
}
