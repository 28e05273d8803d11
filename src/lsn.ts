import { WalError } from './errors.js';
import { MAX_LSN } from './format/constants.js';

/** Hands out LSNs in call order; every record takes the next one (docs/FORMAT.md, "LSN rules"). */
export class LsnAllocator {
  constructor(private next: number) {}

  get nextLsn(): number {
    return this.next;
  }

  /** The last LSN handed out (0 when none). */
  get lastLsn(): number {
    return this.next - 1;
  }

  /** Throws `WAL_LSN_EXHAUSTED` unless `count` more LSNs fit below 2^53. */
  ensureAvailable(count: number): void {
    // Computed as a difference: near 2^53, `next + count` is no longer exact.
    const remaining = MAX_LSN - this.next + 1;
    if (count > remaining) {
      throw new WalError(
        'WAL_LSN_EXHAUSTED',
        `the log needs ${count} more LSNs but only ${Math.max(0, remaining)} remain below 2^53`,
        { lsn: this.next },
      );
    }
  }

  /** Takes exactly `lsn` (a replica's record at its source's LSN), skipping those before it; `lsn` is at least the next one. */
  takeAt(lsn: number): number {
    this.next = lsn + 1;
    return lsn;
  }

  /** Takes `count` consecutive LSNs and returns the first; call `ensureAvailable` first. */
  take(count: number): number {
    const first = this.next;
    this.next += count;
    return first;
  }
}
