import { WalError } from './errors.js';
import type { CommitOptions, TxLsns } from './types.js';

/** What a Tx needs from its Wal; every call checks that the Wal can still write. */
export interface TxHost<In> {
  append(beginLsn: number, event: In): number;
  appendBatch(beginLsn: number, events: readonly In[]): number;
  /** Stages TxCommit now; the promise settles at the sync mode's point. */
  commit(beginLsn: number, options: unknown): Promise<TxLsns>;
  commitSync(beginLsn: number, options: unknown): TxLsns;
  abort(beginLsn: number): number;
}

type TxState = 'open' | 'committed' | 'aborted';

/**
 * A multi-step transaction from `wal.begin()`. Its records are buffered until
 * its commit (or a flush or sync) writes them; several may be open at once.
 * `commit()` resolves at the same point as `wal.commit()`; replay keeps a
 * transaction only if its TxCommit reached the disk.
 */
export class Tx<In = Uint8Array> {
  private current: TxState = 'open';

  constructor(
    private readonly host: TxHost<In>,
    /** The LSN of this transaction's TxBegin record. */
    readonly beginLsn: number,
  ) {}

  get state(): TxState {
    return this.current;
  }

  /** Appends one event as a Mutation record; returns its LSN. */
  append(event: In): number {
    this.assertOpen('append');
    return this.host.append(this.beginLsn, event);
  }

  /** Appends events as one MutationBatch record; returns its LSN. */
  appendBatch(events: readonly In[]): number {
    this.assertOpen('appendBatch');
    return this.host.appendBatch(this.beginLsn, events);
  }

  /**
   * Appends TxCommit and writes the transaction; resolves with its LSNs at the
   * point the sync mode promises (`durable: true`: once fsync'd), as `wal.commit()` does.
   */
  commit(options?: CommitOptions): Promise<TxLsns> {
    try {
      this.assertOpen('commit');
      const done = this.host.commit(this.beginLsn, options);
      this.current = 'committed';
      return done;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** `commit`, blocking until the same point. */
  commitSync(options?: CommitOptions): TxLsns {
    this.assertOpen('commitSync');
    const lsns = this.host.commitSync(this.beginLsn, options);
    this.current = 'committed';
    return lsns;
  }

  /** Appends TxAbort; replay drops the transaction. Returns the abort's LSN. */
  abort(): number {
    this.assertOpen('abort');
    const lsn = this.host.abort(this.beginLsn);
    this.current = 'aborted';
    return lsn;
  }

  private assertOpen(method: string): void {
    if (this.current !== 'open') {
      throw new WalError(
        'WAL_CLOSED',
        `tx.${method}(): transaction ${this.beginLsn} is already ${this.current}; start a new one with wal.begin()`,
        { lsn: this.beginLsn },
      );
    }
  }
}
