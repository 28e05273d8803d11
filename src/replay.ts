import path from 'node:path';
import { WalError, describeLocation } from './errors.js';
import { HEADER_BYTES, RecordKind } from './format/constants.js';
import type { Crc32 } from './format/crc.js';
import { batchEvents, isZero, lastNonZeroByte, readFrame, type DecodedFrame, type FrameReadResult } from './format/frame.js';
import { findFramesAfterDamage, type FramesAfterDamage } from './format/resync.js';
import { decodeSegmentHeader } from './format/header.js';
import { parseSegmentId } from './format/segment-name.js';
import { call, type IoProgram } from './io/program.js';
import type { TxSpans } from './tx-spans.js';
import type { Recovery, TornTail, TxLsns, WalRecord } from './types.js';

/*
 * The one scanner. Recovery, replayDir and readWal (and the CLI) feed it the
 * segments in id order; it checks every rule of SPEC §6.4 (and the stricter
 * dense-LSN rule of docs/DESIGN.md), keeps the events of open transactions,
 * and hands over each committed transaction above the fence.
 */

export interface SegmentRef {
  id: number;
  path: string;
}

/** The segment files of `dir` in id order; other files are ignored. */
export function* listSegments(dir: string): IoProgram<SegmentRef[]> {
  const names = yield* call('listDir', dir);
  const segments: SegmentRef[] = [];
  for (const name of names) {
    const id = parseSegmentId(name);
    if (id !== null) segments.push({ id, path: path.join(dir, name) });
  }
  return segments.sort((a, b) => a.id - b.id);
}

export interface ScannedSegment {
  ref: SegmentRef;
  baseLsn: number;
  /** LSN of the last good record; baseLsn − 1 when it holds none. */
  lastLsn: number;
  sealed: boolean;
  /** Offset just after the last good frame. */
  dataEnd: number;
  fileBytes: number;
  records: number;
  tornTail: TornTail | null;
}

/** A committed transaction handed over by the scanner: raw event bytes and their record LSNs. */
export interface CommittedTx {
  events: Buffer[];
  eventLsns: number[];
  lsns: TxLsns;
}

export interface ScanOptions {
  checkpointLsn: number;
  crc32: Crc32;
  spans: TxSpans;
  /** Called for every record that passed every check, in log order. */
  onRecord?: (record: WalRecord) => void;
  /**
   * Called for a record accepted only because the fence covers it: its
   * TxBegin is older than the first segment (truncated away) and its LSN is at
   * or below `checkpointLsn`. Lets a tool scan once with a high fence and tell
   * afterwards which records a lower fence would refuse.
   */
  onCoveredBySnapshot?: (record: { lsn: number; txBeginLsn: number }, where: { file: string; offset: number }) => void;
}

interface OpenTx {
  events: Buffer[];
  eventLsns: number[];
  lastLsn: number;
}

/** What a whole scan found: the figures of `Recovery`, and the LSN the next record must carry. */
export type ScanTotals = Omit<Recovery, 'tornTail' | 'repairs' | 'checkpointLsn'> & { nextLsn: number };

export class LogScanner {
  private readonly open = new Map<number, OpenTx>();
  private readonly committed: CommittedTx[] = [];
  private expectedLsn: number | null = null;
  private previousId: number | null = null;
  private firstBaseLsn = 0;
  private maxLsn = 0;
  private checkpointLsnObserved = 0;
  private transactions = 0;
  private events = 0;
  private abortedTransactions = 0;
  private segments = 0;

  constructor(private readonly options: ScanOptions) {}

  /**
   * Scans one segment. Returns null when it is the last segment and holds
   * nothing but a missing, zero or partial header (a crash while creating it);
   * throws `WAL_MALFORMED` / `WAL_BAD_SEGMENT_HEADER` for anything else that
   * cannot be trusted.
   */
  scan(ref: SegmentRef, bytes: Buffer, isLast: boolean): ScannedSegment | null {
    this.segments++;
    // Rotation creates id + 1 only after sealing id, and truncation deletes the
    // oldest first: no crash leaves a hole, so a hole is lost records, even
    // when the LSNs around it happen to chain.
    if (this.previousId !== null && ref.id !== this.previousId + 1) {
      throw malformed(`segment ${this.previousId + 1} is missing: segment ${ref.id} follows segment ${this.previousId}`, {
        file: ref.path,
        offset: 0,
      });
    }
    this.previousId = ref.id;
    const header = this.readHeader(ref, bytes, isLast);
    if (header === null) return null;
    const { baseLsn, sealed } = header;
    if (this.expectedLsn === null) {
      this.firstBaseLsn = baseLsn;
    } else if (baseLsn !== this.expectedLsn) {
      const previous = this.expectedLsn - 1;
      throw malformed(
        baseLsn < this.expectedLsn
          ? `segment base LSN ${baseLsn} is not above the last record before it (LSN ${previous})`
          : `segment base LSN ${baseLsn} leaves a gap after LSN ${previous}: records are missing`,
        { file: ref.path, offset: 0, lsn: baseLsn },
      );
    }
    this.expectedLsn = baseLsn;

    let offset = HEADER_BYTES;
    let records = 0;
    let tornTail: TornTail | null = null;
    for (;;) {
      const result = readFrame(bytes, offset, bytes.length, this.options.crc32);
      if (result.status === 'record') {
        this.acceptRecord(result.frame, ref, offset);
        offset += result.frame.length;
        records++;
        continue;
      }
      const trailingEnd = lastNonZeroByte(bytes, offset, bytes.length) + 1;
      if (result.status === 'end' && trailingEnd <= offset) break;
      const after = findFramesAfterDamage(bytes, offset, trailingEnd, this.expectedLsn, this.options.crc32);
      const cause = describeDamage(result, after);
      // A sealed segment was whole and fsync'd before its flag was set: damage
      // there is corruption, not a torn write, even in the last segment.
      if (!isLast || sealed) {
        throw malformed(`damage in a ${isLast ? 'sealed segment' : 'segment that is not the last'}: ${cause}`, {
          file: ref.path,
          offset,
          lsn: this.expectedLsn,
          cause: result.status === 'damage' ? new WalError(result.code, result.reason) : undefined,
        });
      }
      tornTail = {
        segmentId: ref.id,
        offset,
        discardedBytes: trailingEnd - offset,
        cause,
        validFramesAfter: after.count,
        lsnRangeAfter: after.lsnRange,
        quarantineFile: null,
      };
      break;
    }
    if (!isLast || sealed) this.options.spans.segmentEnded(ref.id);
    return {
      ref,
      baseLsn,
      lastLsn: this.expectedLsn - 1,
      sealed,
      dataEnd: offset,
      fileBytes: bytes.length,
      records,
      tornTail,
    };
  }

  /**
   * Copies the events of transactions still open, so the buffer the last
   * segment was read into can be reused for the next one.
   */
  detachOpenEvents(): void {
    for (const tx of this.open.values()) tx.events = tx.events.map((event) => Buffer.from(event));
  }

  /** Committed transactions found since the last call, in commit order. */
  takeCommitted(): CommittedTx[] {
    return this.committed.splice(0, this.committed.length);
  }

  /** Ends the scan: transactions still open are dropped (their commit never came). */
  finish(): ScanTotals {
    const incomplete = this.open.size;
    for (const [beginLsn, tx] of this.open) this.options.spans.end(beginLsn, tx.lastLsn);
    this.open.clear();
    return {
      maxLsn: this.maxLsn,
      nextLsn: this.expectedLsn ?? 1,
      checkpointLsnObserved: this.checkpointLsnObserved,
      transactions: this.transactions,
      events: this.events,
      abortedTransactions: this.abortedTransactions,
      incompleteTransactions: incomplete,
      segments: this.segments,
    };
  }

  private readHeader(ref: SegmentRef, bytes: Buffer, isLast: boolean): { baseLsn: number; sealed: boolean } | null {
    try {
      return decodeSegmentHeader(bytes, ref.path, this.options.crc32);
    } catch (error) {
      const walError = error as WalError;
      const holdsNoRecord = isZero(bytes, HEADER_BYTES, bytes.length);
      if (isLast && holdsNoRecord && walError.code === 'WAL_BAD_SEGMENT_HEADER') return null;
      if (isLast) throw error;
      throw malformed(`a segment that is not the last has a bad header: ${walError.message}`, {
        file: ref.path,
        offset: 0,
        cause: error,
      });
    }
  }

  private acceptRecord(frame: DecodedFrame, ref: SegmentRef, offset: number): void {
    const expected = this.expectedLsn as number;
    const where = { file: ref.path, offset, lsn: frame.lsn };
    if (frame.lsn === -1) throw malformed('record LSN is above 2^53-1', { ...where, lsn: undefined });
    if (frame.lsn !== expected) {
      throw malformed(
        frame.lsn < expected
          ? `record LSN ${frame.lsn} is not above the previous LSN ${expected - 1} (or is below its segment's base)`
          : `record LSN ${frame.lsn} skips LSN ${expected}: records are missing`,
        where,
      );
    }
    if (frame.txBeginLsn === -1) throw malformed('tx_begin_lsn is above 2^53-1', where);
    this.applyRecord(frame, where);
    this.expectedLsn = expected + 1;
    this.maxLsn = frame.lsn;
    this.options.onRecord?.({
      kind: frame.kind,
      lsn: frame.lsn,
      txBeginLsn: frame.txBeginLsn,
      payload: frame.payload,
      segmentId: ref.id,
      offset,
    });
  }

  private applyRecord(frame: DecodedFrame, where: { file: string; offset: number; lsn: number }): void {
    const { kind, lsn, txBeginLsn } = frame;
    if (kind === RecordKind.Checkpoint) {
      if (txBeginLsn > lsn) throw malformed(`Checkpoint names snapshot LSN ${txBeginLsn}, past itself`, where);
      if (txBeginLsn < this.checkpointLsnObserved) {
        throw malformed(
          `Checkpoint names snapshot LSN ${txBeginLsn}, below the earlier Checkpoint's ${this.checkpointLsnObserved}`,
          where,
        );
      }
      this.checkpointLsnObserved = txBeginLsn;
      return;
    }
    if (kind === RecordKind.TxBegin) {
      if (txBeginLsn !== 0) {
        throw malformed(`TxBegin carries tx_begin_lsn ${txBeginLsn}; a duplicate or nested TxBegin`, where);
      }
      this.open.set(lsn, { events: [], eventLsns: [], lastLsn: lsn });
      this.options.spans.begin(lsn);
      return;
    }
    const tx = this.open.get(txBeginLsn);
    if (tx === undefined) {
      // A transaction whose start was truncated away is covered by the snapshot
      // as long as this record is too (docs/DESIGN.md, "The checkpoint fence").
      if (txBeginLsn < this.firstBaseLsn && lsn <= this.options.checkpointLsn) {
        this.options.onCoveredBySnapshot?.({ lsn, txBeginLsn }, { file: where.file, offset: where.offset });
        return;
      }
      throw malformed(`record names TxBegin LSN ${txBeginLsn}, which never came or already ended`, where);
    }
    tx.lastLsn = lsn;
    switch (kind) {
      case RecordKind.Mutation:
        tx.events.push(frame.payload);
        tx.eventLsns.push(lsn);
        return;
      case RecordKind.MutationBatch:
        for (const event of batchEvents(frame.payload)) {
          tx.events.push(event);
          tx.eventLsns.push(lsn);
        }
        return;
      case RecordKind.TxAbort:
        this.open.delete(txBeginLsn);
        this.options.spans.end(txBeginLsn, lsn);
        this.abortedTransactions++;
        return;
      case RecordKind.TxCommit:
        this.open.delete(txBeginLsn);
        this.options.spans.end(txBeginLsn, lsn);
        if (lsn <= this.options.checkpointLsn) return;
        this.transactions++;
        this.events += tx.events.length;
        this.committed.push({ events: tx.events, eventLsns: tx.eventLsns, lsns: { beginLsn: txBeginLsn, commitLsn: lsn } });
        return;
    }
  }

}

/** Why the bytes at a frame boundary are not the next frame, and whether valid frames follow. */
function describeDamage(result: FrameReadResult, after: FramesAfterDamage): string {
  const what = result.status === 'damage' ? `${result.code}: ${result.reason}` : 'non-zero bytes after the end-of-log marker';
  if (after.lsnRange === null) return what;
  const { first, last } = after.lsnRange;
  return `${what}; ${after.count} valid frame${after.count === 1 ? '' : 's'} (LSN ${first}..${last}) follow the damage`;
}

function malformed(
  message: string,
  details: { file: string; offset?: number; lsn?: number | null | undefined; cause?: unknown },
): WalError {
  const lsn = details.lsn ?? undefined;
  const where = { file: details.file, offset: details.offset, lsn };
  return new WalError('WAL_MALFORMED', `${message}${describeLocation(where)}`, { ...where, cause: details.cause });
}

/** Makes a codec decode error name its LSN when the codec did not. */
export function decodeError(error: unknown, lsn: number): WalError {
  if (error instanceof WalError) return error;
  return new WalError('WAL_DECODE', `event at LSN ${lsn} does not decode: ${(error as Error)?.message ?? String(error)}`, {
    lsn,
    cause: error,
  });
}
