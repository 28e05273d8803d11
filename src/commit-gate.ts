import { WalError } from './errors.js';

/**
 * Backpressure (docs/REPLICATION.md, "Retention and backpressure"): while a
 * hold is on, new transactions wait. `commit()` waits in call order (so call
 * order stays log order) and fails with WAL_BACKPRESSURE once the hold's
 * timeout passes; the blocking `commitSync()` and `begin()` fail at once.
 * Transactions already begun may still append and commit: holding them would
 * free nothing.
 */
interface Waiting {
  admit(): void;
  refuse(error: WalError): void;
  timer: NodeJS.Timeout;
}

interface Hold {
  reason: string;
  timeoutMs: number;
}

export class CommitGate {
  private readonly holds = new Set<Hold>();
  private readonly waiting: Waiting[] = [];
  private readonly checks = new Set<() => void>();

  /** True when a new transaction may start now. */
  get open(): boolean {
    return this.holds.size === 0 && this.waiting.length === 0;
  }

  /**
   * True when a new transaction may start now, once every check had its say:
   * a check (a shipper's byte limit) may `hold` right there, so a limit is
   * met by the transaction that would cross it, not some time later.
   */
  admits(): boolean {
    if (this.checks.size > 0) for (const check of this.checks) check();
    return this.open;
  }

  /** Runs `check` before each new transaction (see `admits`); returns a function that removes it. */
  addCheck(check: () => void): () => void {
    this.checks.add(check);
    return () => void this.checks.delete(check);
  }

  /** Commits waiting for the holds to end. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /** Why new transactions are held, one reason per hold. */
  get reasons(): string[] {
    return [...this.holds].map((hold) => hold.reason);
  }

  /** Holds new transactions until the returned function is called. */
  hold(reason: string, timeoutMs: number): () => void {
    const hold = { reason, timeoutMs };
    this.holds.add(hold);
    return () => {
      if (this.holds.delete(hold)) this.admitWaiting();
    };
  }

  /** Runs `start` once no hold is on and every commit before it has started; refuses after the shortest hold's timeout. */
  wait<T>(method: string, start: () => Promise<T>): Promise<T> {
    if (this.holds.size === 0) return start();
    return new Promise<T>((resolve, reject) => {
      const timeoutMs = Math.min(...[...this.holds].map((hold) => hold.timeoutMs));
      const entry: Waiting = {
        admit: () => {
          clearTimeout(entry.timer);
          // A start that throws (its checks of the log) refuses this commit only: the ones admitted after it still start.
          try {
            start().then(resolve, reject);
          } catch (error) {
            reject(error);
          }
        },
        refuse: (error) => {
          clearTimeout(entry.timer);
          reject(error);
        },
        timer: setTimeout(() => {
          const index = this.waiting.indexOf(entry);
          if (index >= 0) this.waiting.splice(index, 1);
          reject(this.refusal(method, `waited ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiting.push(entry);
      this.admitWaiting();
    });
  }

  /** The error of a transaction refused because of the holds. */
  refusal(method: string, detail: string): WalError {
    return new WalError(
      'WAL_BACKPRESSURE',
      `${method}(): new transactions are held (${this.reasons.join('; ')}); ${detail}. Nothing was written`,
    );
  }

  /** Refuses every waiting commit with `error` (the log is closing, or poisoned). */
  refuseAll(error: WalError): void {
    for (const entry of this.waiting.splice(0)) entry.refuse(error);
  }

  private admitWaiting(): void {
    if (this.holds.size > 0) return;
    for (const entry of this.waiting.splice(0)) entry.admit();
  }
}
