import { WalError, describeLocation } from '../errors.js';
import { COMMIT_RECORD_SPAN } from '../format/constants.js';
import { runAsync, type IoProgram } from '../io/program.js';
import type { FrameChecksums, WalIo } from '../io/types.js';
import type { RecentWrites } from '../recent-writes.js';
import type { TxLsns } from '../types.js';
import { resolveFence } from './fence.js';
import { LogValidator, type ScannedRecord } from './log-validator.js';
import type { Reuse } from './segment-source.js';
import { listSegments, segmentHeaderAndSize, type SegmentRef } from './segments.js';
import { TxAssembler, type CommittedTx } from './tx-assembler.js';

/*
 * The engine behind readWal, readTransactions and wal.readTransactions: the
 * one validator and assembler, read in batches off the event loop's io, and,
 * when followed, woken by whatever says more may be there (a poll timer, or a
 * live Wal's durable progress). Every record passes the checks open makes,
 * transaction structure included.
 */

/** Where a reader resumes to see every transaction committed after the one it was handed. */
export interface ResumePoint {
  /** Transactions committed at or after it are yielded. */
  fromLsn: number;
  /** Reading may start here: no transaction committed later began before it. */
  scanFromLsn: number;
}

/** A committed transaction as the stream hands it over (the assembler's, its LSNs flat), with the point to resume from after it. */
export type StreamedTx = Omit<CommittedTx, 'lsns'> & TxLsns & { resume: ResumePoint };

/**
 * Consecutive one-frame transactions as the log holds them (`commitRuns`):
 * their Commit records' frames, a view like a transaction's events, how
 * many, and the last one's commit LSN. No transaction was open among them,
 * so a reader resumes right after any of them.
 */
export interface CommitRun {
  frames: Buffer;
  count: number;
  commitLsn: number;
}

/** Whether what a shipper's read handed over is a run of frames rather than one transaction. */
export function isCommitRun<Tx extends object>(item: Tx | CommitRun): item is CommitRun {
  return 'frames' in item;
}

export interface StreamConfig {
  /** Reads through it, and checks CRCs with it. */
  io: WalIo;
  dir: string;
  /** Transactions committed at or after it are yielded; 'marker': those open would replay by default. */
  fromLsn: number | 'marker';
  /**
   * Reading may start at the segment holding this LSN (a resume point's
   * `scanFromLsn`). When truncation removed it: refuse (WAL_LSN_TRUNCATED), or
   * read what is left (a tool listing records).
   */
  scanFrom: { lsn: number; ifTruncated: 'refuse' | 'read what is left' } | null;
  /** Raw records only: no transaction is handed over, and records of transactions begun before the read are fine. */
  recordsOnly: boolean;
  follow: boolean;
  signal: AbortSignal | undefined;
  /** Followed: resolves when more may be there. */
  waitForMore(signal: AbortSignal | undefined): Promise<void>;
  /** Releases what waiting holds (a directory watch), once the stream ends. */
  stopWaiting?(): void;
  /** fdatasync what is read of a segment that is not sealed before handing it over (durable-only, out of process). */
  syncReads: boolean;
  /** No record above it is read until it moves (a live Wal's durableLsn); Infinity for none. */
  limit(): number;
  /** True once the source is gone for good (a closed Wal): the stream ends. May throw (a poisoned Wal). */
  ended(): boolean;
  /** A live Wal's newest writes, read from memory rather than the file (an in-process reader); attached while the stream runs. */
  recent: RecentWrites | null;
  /** Hand a one-frame transaction's events over as its batch (CommittedTx.batch): the shipper's reads. */
  keepBatches?: boolean;
  /**
   * The consumer is done with a batch's views once it asks for the next one
   * (the shipper, which copies each transaction into its message as it takes
   * it): the window's buffers are reused, and the events of transactions
   * still open are copied first. Otherwise every refill reads into new
   * memory, since the events handed over must outlive the read.
   */
  reuseWindows?: boolean;
}

/**
 * The shipper's reads: consecutive one-frame transactions come as a
 * CommitRun while no other transaction is open, with no object per
 * transaction. Transactions of several records, and a Commit record read
 * while one is open, come as StreamedTx.
 */
export type RunsConfig = StreamConfig & { commitRuns: true };

const BATCH_RECORDS = 4096;

export interface Batch<Tx = StreamedTx> {
  records: ScannedRecord[];
  transactions: Tx[];
}

/** Reads the log in batches until its end (or, followed, until `signal` aborts). */
export function streamLog(config: RunsConfig): AsyncGenerator<Batch<StreamedTx | CommitRun>>;
export function streamLog(config: StreamConfig): AsyncGenerator<Batch>;
export async function* streamLog(config: StreamConfig & Partial<RunsConfig>): AsyncGenerator<Batch<StreamedTx | CommitRun>> {
  const { io, signal } = config;
  const aborted = () => signal?.aborted === true || config.ended();
  config.recent?.attach();
  let reader: Stream | null = null;
  try {
    reader = await runAsync(io, openStream(config));
    while (!aborted()) {
      const { batch, state, failure } = await runAsync(io, reader.readBatch());
      if (batch.records.length > 0 || batch.transactions.length > 0) yield batch;
      // What was read before a refused record is handed over first, then the refusal.
      if (failure !== undefined) throw failure;
      if (state === 'end') return;
      if (state === 'caughtUp') await config.waitForMore(signal);
    }
  } finally {
    config.recent?.detach();
    config.stopWaiting?.();
    if (reader !== null) await runAsync(io, reader.validator.close());
  }
}

interface BatchRead {
  batch: Batch<StreamedTx | CommitRun>;
  state: 'more' | 'caughtUp' | 'end';
  /** The validator or assembler refused what followed the batch. */
  failure?: unknown;
}

interface Stream {
  validator: LogValidator;
  readBatch(): IoProgram<BatchRead>;
}

function* openStream(config: StreamConfig & Partial<RunsConfig>): IoProgram<Stream> {
  const all = yield* listSegments(config.dir);
  const refs = config.scanFrom === null ? all : yield* fromSegmentHolding(all, config.scanFrom, config.io);
  const fence = config.recordsOnly
    ? Number.POSITIVE_INFINITY
    : config.fromLsn === 'marker'
      ? yield* resolveFence(refs, 'marker', config.io)
      : config.fromLsn - 1;
  const assembler = new TxAssembler(fence, {}, config.keepBatches === true);
  const reuse: Reuse | null = config.reuseWindows === true ? { beforeReuse: () => assembler.detachOpenEvents(), buffers: [] } : null;
  const validator = new LogValidator(config.dir, refs, {
    checksums: config.io,
    reuse,
    follow: config.follow,
    syncReads: config.syncReads,
    neededFromLsn: config.scanFrom?.lsn ?? 1,
    ...(config.recent === null ? {} : { recent: config.recent }),
  });
  let ended = false;
  function* readBatch(): IoProgram<BatchRead> {
    const batch: Batch<StreamedTx | CommitRun> = { records: [], transactions: [] };
    if (ended) return { batch, state: 'end' };
    try {
      for (let read = 0; read < BATCH_RECORDS; read++) {
        // Nothing above the limit is read: read, it would wait in memory for the limit to pass it, and its
        // events be copied out before every reuse of the window (a group-mode writer runs up to an fsync
        // ahead of it: S2's shipper spent ~40 % of its process's time so; docs/BENCHMARKS.md).
        const limit = config.limit();
        if (validator.nextLsn > limit) {
          // What lay past it when the window was filled (the end, or a live segment's zeros) may be written
          // since: the next read reads it again rather than take that end for the end of the log.
          validator.forgetUnread();
          return { batch, state: 'caughtUp' };
        }
        // A run needs nothing of the assembler: no transaction open, and the fence below the next commit.
        if (config.commitRuns === true && assembler.openCount === 0 && validator.nextLsn + COMMIT_RECORD_SPAN > fence) {
          const run = validator.commitRunInWindow(limit);
          if (run !== null) {
            batch.transactions.push({ frames: run.frames, count: run.count, commitLsn: run.lastCommitLsn });
            read += run.count - 1;
            continue;
          }
        }
        let record = validator.recordInWindow();
        if (record === null) {
          // The next record takes a read, which may reuse the memory this batch's views point into: hand them over first.
          if (batch.transactions.length > 0 || batch.records.length > 0) return { batch, state: 'more' };
          const step = yield* validator.next();
          if (step.type === 'caughtUp') return { batch, state: 'caughtUp' };
          if (step.type === 'end') {
            ended = true;
            assembler.finish();
            return { batch, state: 'end' };
          }
          if (step.type === 'skipped') assembler.forgetBegunBefore(step.baseLsn);
          if (step.type !== 'record') continue;
          record = step.record;
        }
        const tx = assembler.push(record, validator.firstBaseLsn as number);
        // Records are kept for the raw readers only: a transaction reader would hold them for nothing.
        if (config.recordsOnly) batch.records.push(record);
        if (tx !== null) {
          const next = tx.lsns.commitLsn + 1;
          const resume = { fromLsn: next, scanFromLsn: Math.min(next, assembler.oldestOpenBegin ?? next) };
          batch.transactions.push({ beginLsn: tx.lsns.beginLsn, commitLsn: tx.lsns.commitLsn, events: tx.events, batch: tx.batch, eventLsns: tx.eventLsns, resume });
        }
      }
    } catch (failure) {
      ended = true;
      return { batch, state: 'end', failure };
    }
    return { batch, state: 'more' };
  }
  return { validator, readBatch };
}

/**
 * The segments from the one holding `lsn` on, found by a binary search over
 * the headers. A log whose segments were truncated past `lsn` no longer holds
 * what the reader asks for: WAL_LSN_TRUNCATED (a log that simply starts later,
 * a new log above a restored snapshot's fence, is read from its start).
 */
function* fromSegmentHolding(refs: SegmentRef[], scanFrom: NonNullable<StreamConfig['scanFrom']>, checksums: FrameChecksums): IoProgram<SegmentRef[]> {
  if (refs.length === 0) return refs;
  const { lsn } = scanFrom;
  let low = 0;
  let high = refs.length - 1;
  const firstBase = yield* baseLsnOf(refs[0] as SegmentRef, checksums);
  if (firstBase > lsn) {
    const first = refs[0] as SegmentRef;
    if (first.id === 1 || scanFrom.ifTruncated === 'read what is left') return refs;
    const where = { file: first.path, offset: 0, lsn: firstBase };
    throw new WalError(
      'WAL_LSN_TRUNCATED',
      `the log no longer holds LSN ${lsn}: its oldest segment starts at LSN ${firstBase}, the segments before it were truncated${describeLocation(where)}`,
      where,
    );
  }
  // Invariant: base(low) <= lsn; the answer is the last such index.
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    const ref = refs[middle] as SegmentRef;
    const base = yield* baseLsnOf(ref, checksums);
    if (base <= lsn) low = middle;
    else high = middle - 1;
  }
  return refs.slice(low);
}

/** A segment's base LSN; a last segment still being created counts as starting after everything. */
function* baseLsnOf(ref: SegmentRef, checksums: FrameChecksums): IoProgram<number> {
  return (yield* segmentHeaderAndSize(ref, checksums)).header?.baseLsn ?? Number.POSITIVE_INFINITY;
}
