import { WalError } from './errors.js';

/**
 * Callers waiting for their LSN to be written or fsync'd, and the poison
 * latch. Commits take LSNs in call order, so each queue is sorted by LSN and
 * is resolved from the front.
 */
interface Waiter {
  lsn: number;
  value: unknown;
  resolve(value: unknown): void;
  reject(error: WalError): void;
}

export class CommitQueue {
  private readonly writtenWaiters: Waiter[] = [];
  private readonly durableWaiters: Waiter[] = [];
  private writtenHead = 0;
  private durableHead = 0;
  private firstFailure: WalError | null = null;
  private progressWaiter: { promise: Promise<void>; resolve: () => void } | null = null;
  /** Fsyncs, failures and closes so far: a reader compares it to see whether it missed one. */
  progressCount = 0;
  /** Highest LSN written to the OS. */
  writtenLsn: number;
  /** Highest LSN covered by an fsync. */
  durableLsn: number;

  /** `recoveredLsn`: everything up to it is on disk and fsync'd when the Wal opens. */
  constructor(recoveredLsn: number) {
    this.writtenLsn = recoveredLsn;
    this.durableLsn = recoveredLsn;
  }

  /** Resolves with `value` once `lsn` is written to the OS. */
  whenWritten<T>(lsn: number, value: T): Promise<T> {
    if (lsn <= this.writtenLsn && this.firstFailure === null) return Promise.resolve(value);
    return this.enqueue(this.writtenWaiters, lsn, value);
  }

  /** Resolves with `value` once `lsn` is covered by an fsync. */
  whenDurable<T>(lsn: number, value: T): Promise<T> {
    if (lsn <= this.durableLsn && this.firstFailure === null) return Promise.resolve(value);
    return this.enqueue(this.durableWaiters, lsn, value);
  }

  /** True when someone waits for an fsync that covers an LSN at or below `writtenLsn`. */
  awaitsFsyncUpTo(writtenLsn: number): boolean {
    const head = this.durableWaiters[this.durableHead];
    return head !== undefined && head.lsn <= writtenLsn;
  }

  hasWaiters(): boolean {
    return this.writtenHead < this.writtenWaiters.length || this.durableHead < this.durableWaiters.length;
  }

  /** Everything at or below `lsn` has been written. */
  written(lsn: number): void {
    if (lsn > this.writtenLsn) this.writtenLsn = lsn;
    this.writtenHead = resolveUpTo(this.writtenWaiters, this.writtenHead, lsn);
  }

  /**
   * Resolves at the next fsync, failure or close: an in-process reader, which
   * reads only up to `durableLsn`, waits for it instead of polling. A write
   * alone wakes no one: it does not move `durableLsn`, and woken by each of a
   * group-mode writer's writes, a shipper's reader found nothing to read
   * ~5,000 times a second. Waiting asks for no fsync (a durable waiter would).
   */
  progress(): Promise<void> {
    if (this.progressWaiter === null) {
      let resolve!: () => void;
      const promise = new Promise<void>((done) => (resolve = done));
      this.progressWaiter = { promise, resolve };
    }
    return this.progressWaiter.promise;
  }

  /** Wakes whoever waits for `progress()`. */
  notifyProgress(): void {
    this.progressCount++;
    const waiter = this.progressWaiter;
    this.progressWaiter = null;
    waiter?.resolve();
  }

  /** Everything at or below `lsn` has been fsync'd. */
  durable(lsn: number): void {
    if (lsn > this.durableLsn) this.durableLsn = lsn;
    this.written(lsn);
    this.durableHead = resolveUpTo(this.durableWaiters, this.durableHead, lsn);
    this.notifyProgress();
  }

  get failure(): WalError | null {
    return this.firstFailure;
  }

  /** Latches the first failure and rejects every waiter with WAL_POISONED. */
  poison(failure: WalError): void {
    if (this.firstFailure !== null) return;
    this.firstFailure = failure;
    for (const [queue, head] of [
      [this.writtenWaiters, this.writtenHead],
      [this.durableWaiters, this.durableHead],
    ] as const) {
      for (let i = head; i < queue.length; i++) queue[i]?.reject(this.poisonedError());
    }
    this.writtenHead = clear(this.writtenWaiters);
    this.durableHead = clear(this.durableWaiters);
    this.notifyProgress();
  }

  /** A fresh WAL_POISONED error carrying the first failure. */
  poisonedError(): WalError {
    const failure = this.firstFailure as WalError;
    return new WalError(
      'WAL_POISONED',
      `the log is poisoned by an earlier failure and accepts no more writes (${failure.message}); ` +
        'close it and open it again to recover what reached the disk',
      { cause: failure },
    );
  }

  private enqueue<T>(queue: Waiter[], lsn: number, value: T): Promise<T> {
    if (this.firstFailure !== null) return Promise.reject(this.poisonedError());
    return new Promise<T>((resolve, reject) => {
      queue.push({ lsn, value, resolve: resolve as (value: unknown) => void, reject });
    });
  }
}

/** Resolves waiters at or below `lsn`; returns the new head, compacting the array now and then. */
function resolveUpTo(queue: Waiter[], head: number, lsn: number): number {
  while (head < queue.length && (queue[head] as Waiter).lsn <= lsn) {
    const waiter = queue[head] as Waiter;
    waiter.resolve(waiter.value);
    head++;
  }
  if (head === queue.length) return clear(queue);
  if (head >= COMPACT_AFTER) {
    queue.splice(0, head);
    return 0;
  }
  return head;
}

const COMPACT_AFTER = 1024;

function clear(queue: Waiter[]): number {
  if (queue.length > 0) queue.length = 0; // setting it costs even on an empty array, and written() runs per write
  return 0;
}
