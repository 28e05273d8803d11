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
 *   - the group timer, which only fsyncs what is already written: records a
 *     caller staged without asking for a write wait for that caller;
 *   - the spare segment, prepared in the background;
 *   - the blocking drain of the *Sync API;
 *   - the poison decision: the first failure of any of these latches.
 */
export class Scheduler {
  private draining: Promise<void> | null = null;
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
    /** Told once, when the first failure poisons the log. */
    private readonly onPoisoned: (poisoned: WalError) => void,
  ) {
    this.timer = groupIntervalMs === null ? null : setInterval(() => this.groupTick(), groupIntervalMs);
    this.timer?.unref();
  }

  /** A caller's write: what is staged goes out in the async loop, and is fsync'd too when `fsync`. */
  requestWrite(fsync: boolean): void {
    this.writeWanted = true;
    if (fsync) this.forceFsync = true;
    this.draining ??= this.drainLoop();
  }

  /** The *Sync API: writes what is staged on the calling thread, and fsyncs it when `fsync`. Throws WAL_POISONED. */
  writeNow(fsync: boolean): void {
    try {
      runSync(this.io, this.writer.drainRound(fsync));
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
        if (write && this.writer.hasWork(fsync)) await runAsync(this.io, this.writer.drainRound(fsync));
        else if (fsync && this.writer.hasNonDurableWrites) await runAsync(this.io, this.writer.fsyncWritten());
        else break;
      }
    } catch (error) {
      this.poison(error);
    } finally {
      this.draining = null;
    }
    this.prepareSpareInBackground();
  }
}
