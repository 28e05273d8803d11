import { COMMIT_RECORD_SPAN, RecordKind } from '../format/constants.js';
import { batchCount, batchEvents, replicatedPayload } from '../format/frame.js';
import type { TxLsns } from '../types.js';
import { malformed, type ScannedRecord } from './log-validator.js';

/*
 * The transaction assembler, fed one record at a time in log order by
 * whoever reads (open, replayDir, readTransactions, followers, the CLI):
 * `push(record)` returns a committed transaction when the record is its
 * TxCommit or a Commit record (a whole transaction in one frame), and nothing
 * otherwise. It checks the transaction structure of
 * docs/FORMAT.md (a TxBegin carries 0, every other record names a TxBegin
 * still open, Checkpoints never point past themselves nor go back) and
 * applies the fence by commit LSN (docs/DESIGN.md, "The checkpoint fence").
 * Truncation bookkeeping and statistics listen through a TxObserver; the
 * assembler needs neither.
 */

/** A committed transaction: raw event bytes (views into the reader's window) and each event's record LSN. */
export interface CommittedTx {
  events: Buffer[];
  /**
   * Set only by an assembler that keeps batches (the shipper's reads): the
   * events of a transaction in one frame, still in the batch format (u32
   * count, then u32 length and bytes each), the way they travel to a stream;
   * `events` is then empty. Null otherwise.
   */
  batch: Buffer | null;
  /** Each event's LSN, or the one LSN all of them share (a one-record transaction's: no array to build). */
  eventLsns: number[] | number;
  lsns: TxLsns;
}

/** Optional listeners: `TxSpans` (truncation), the CLI's tallies. */
export interface TxObserver {
  begun?(beginLsn: number): void;
  ended?(beginLsn: number, endLsn: number): void;
  /**
   * A record accepted only because the fence covers it: its TxBegin is older
   * than the first segment read (truncated away, or before the read started)
   * and its LSN is at or below the fence.
   */
  covered?(record: ScannedRecord): void;
}

/** The events of a transaction whose events are in its `batch`. */
const IN_BATCH: Buffer[] = Object.freeze([]) as unknown as Buffer[];

interface OpenTx {
  events: Buffer[];
  eventLsns: number[];
  lastLsn: number;
}

export class TxAssembler {
  private readonly open = new Map<number, OpenTx>();
  /** The highest snapshot LSN named by a Checkpoint record so far (0 when none). */
  checkpointLsnObserved = 0;
  /** Committed transactions (and their events) above the fence. */
  transactions = 0;
  events = 0;
  abortedTransactions = 0;

  constructor(
    /** Transactions committed at or below it are checked, not handed over. */
    private readonly fence: number,
    private readonly observer: TxObserver = {},
    /** Hand a one-frame transaction's events over as its batch, not split (docs/REPLICATION.md, "Message layout"). */
    private readonly keepBatches = false,
  ) {}

  /** `firstBaseLsn`: the base LSN of the first segment read; a TxBegin older than it was never seen. */
  push(record: ScannedRecord, firstBaseLsn: number): CommittedTx | null {
    const { kind, lsn, txBeginLsn } = record;
    const where = { file: record.file, offset: record.offset, lsn };
    if (kind === RecordKind.Checkpoint) {
      if (txBeginLsn > lsn) throw malformed(`Checkpoint names snapshot LSN ${txBeginLsn}, past itself`, where);
      if (txBeginLsn < this.checkpointLsnObserved) {
        throw malformed(`Checkpoint names snapshot LSN ${txBeginLsn}, below the earlier Checkpoint's ${this.checkpointLsnObserved}`, where);
      }
      this.checkpointLsnObserved = txBeginLsn;
      return null;
    }
    if (kind === RecordKind.Commit) return this.wholeTransaction(record);
    if (kind === RecordKind.Replicated) {
      // A whole transaction in one record (a replica's): handed over at once, fenced by its commit LSN.
      if (lsn <= this.fence) return null;
      const { events } = replicatedPayload(record.payload);
      this.transactions++;
      this.events += events.length;
      return { events, batch: null, eventLsns: lsn, lsns: { beginLsn: txBeginLsn, commitLsn: lsn } };
    }
    if (kind === RecordKind.TxBegin) {
      if (txBeginLsn !== 0) throw malformed(`TxBegin carries tx_begin_lsn ${txBeginLsn}; a duplicate or nested TxBegin`, where);
      this.open.set(lsn, { events: [], eventLsns: [], lastLsn: lsn });
      this.observer.begun?.(lsn);
      return null;
    }
    const tx = this.open.get(txBeginLsn);
    if (tx === undefined) {
      // A transaction whose start was truncated away (or read before this read began)
      // is covered by the snapshot as long as this record is too.
      if (txBeginLsn < firstBaseLsn && lsn <= this.fence) {
        this.observer.covered?.(record);
        return null;
      }
      throw malformed(`record names TxBegin LSN ${txBeginLsn}, which never came or already ended`, where);
    }
    tx.lastLsn = lsn;
    switch (kind) {
      case RecordKind.Mutation:
        tx.events.push(record.payload);
        tx.eventLsns.push(lsn);
        return null;
      case RecordKind.MutationBatch:
        for (const event of batchEvents(record.payload)) {
          tx.events.push(event);
          tx.eventLsns.push(lsn);
        }
        return null;
      case RecordKind.TxAbort:
        this.open.delete(txBeginLsn);
        this.observer.ended?.(txBeginLsn, lsn);
        this.abortedTransactions++;
        return null;
      case RecordKind.TxCommit:
        this.open.delete(txBeginLsn);
        this.observer.ended?.(txBeginLsn, lsn);
        if (lsn <= this.fence) return null;
        this.transactions++;
        this.events += tx.events.length;
        return { events: tx.events, batch: null, eventLsns: tx.eventLsns, lsns: { beginLsn: txBeginLsn, commitLsn: lsn } };
    }
  }

  /**
   * A Commit record: begun and committed in one frame, its events at the LSN
   * the MutationBatch of the three-record form would carry; the fence applies
   * by its commit LSN, as for a TxCommit.
   */
  private wholeTransaction(record: ScannedRecord): CommittedTx | null {
    const { lsn: commitLsn, txBeginLsn: beginLsn } = record;
    this.observer.begun?.(beginLsn);
    this.observer.ended?.(beginLsn, commitLsn);
    if (commitLsn <= this.fence) return null;
    const eventLsn = commitLsn - COMMIT_RECORD_SPAN + 1;
    const lsns = { beginLsn, commitLsn };
    this.transactions++;
    if (this.keepBatches) {
      this.events += batchCount(record.payload);
      return { events: IN_BATCH, batch: record.payload, eventLsns: eventLsn, lsns };
    }
    const events = batchEvents(record.payload);
    this.events += events.length;
    return { events, batch: null, eventLsns: eventLsn, lsns };
  }

  /** Transactions begun and not yet ended. */
  get openCount(): number {
    return this.open.size;
  }

  /** The begin LSN of the oldest transaction still open, or null: a reader restarting later must read from there. */
  get oldestOpenBegin(): number | null {
    for (const beginLsn of this.open.keys()) return beginLsn;
    return null;
  }

  /**
   * A truncation removed the records before `baseLsn` while a follower was
   * behind (records it did not need): a transaction begun before them ended
   * inside what was removed (the Wal never truncates a transaction that ends
   * later), so it is forgotten.
   */
  forgetBegunBefore(baseLsn: number): void {
    for (const beginLsn of this.open.keys()) if (beginLsn < baseLsn) this.open.delete(beginLsn);
  }

  /** Copies the events of transactions still open, so the window they point into can be reused. */
  detachOpenEvents(): void {
    for (const tx of this.open.values()) tx.events = tx.events.map((event) => Buffer.from(event));
  }

  /** Ends the read: transactions still open are dropped (their commit never came); returns how many. */
  finish(): number {
    const incomplete = this.open.size;
    for (const [beginLsn, tx] of this.open) this.observer.ended?.(beginLsn, tx.lastLsn);
    this.open.clear();
    return incomplete;
  }
}
