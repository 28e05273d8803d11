import { WalError } from './errors.js';

/** What a Tx needs from its Wal; every call checks that the Wal can still write. */
export interface TxHost<In> {
  append(beginLsn: number, event: In): number;
  appendBatch(beginLsn: number, events: readonly In[]): number;
  commit(beginLsn: number): number;
  abort(beginLsn: number): number;
}

type TxState = 'open' | 'committed' | 'aborted';

/**
 * A multi-step transaction from `wal.begin()`. Its records are buffered;
 * `wal.flush()` / `wal.sync()` (or the group timer) write them. Several may be
 * open at once; replay keeps a transaction only if its TxCommit reached the disk.
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

  /** Appends TxCommit; returns its LSN. Durable once a flush/sync covers it. */
  commit(): number {
    this.assertOpen('commit');
    const lsn = this.host.commit(this.beginLsn);
    this.current = 'committed';
    return lsn;
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
