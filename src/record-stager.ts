import { WalError } from './errors.js';
import {
  BATCH_COUNT_BYTES,
  BATCH_ENTRY_OVERHEAD,
  COMMIT_RECORD_SPAN,
  COMMIT_RECORD_VERSION,
  FRAME_OVERHEAD,
  MAX_FRAME_BYTES,
  RecordKind,
} from './format/constants.js';
import { batchPayloadBytes, replicatedFrameBytes, writeBatchFrame, writeFrame, writeReplicatedFrame } from './format/frame.js';
import { MAX_SEGMENT_ID, segmentFileName } from './format/segment-name.js';
import type { LsnAllocator } from './lsn.js';
import { plannedSegment, type Segment } from './segment.js';
import { Staging } from './staging.js';
import type { TxSpans } from './tx-spans.js';
import type { TxLsns } from './types.js';

/**
 * Encodes records, with their LSNs, into the active segment's staging buffer
 * (their CRCs are filled in when they are written), and rotates between
 * transactions once the active segment is full. No io: the LogWriter turns
 * staged bytes into writes, and the Scheduler decides when.
 */
export class RecordStager {
  constructor(
    private readonly dir: string,
    private readonly segmentBytes: number,
    private readonly lsns: LsnAllocator,
    private readonly spans: TxSpans,
    /** Every segment on disk or about to be, oldest first; the last is the active one. Shared with the LogWriter. */
    private readonly segments: Segment[],
    /** New segments belong to a replica. */
    private readonly replica: boolean,
  ) {}

  /** Transactions committed (staged) since open. */
  commitsStaged = 0;

  get active(): Segment {
    return this.segments[this.segments.length - 1] as Segment;
  }

  /** The LSN of the last record staged or written. */
  get lastLsn(): number {
    return this.lsns.lastLsn;
  }

  /**
   * One transaction of `payloads` (at least one): a Commit record when they fit
   * one frame and the active segment may hold one (format version 2), else
   * TxBegin + MutationBatch(es) + TxCommit. Both take the same LSNs
   * (docs/FORMAT.md, "Record kinds").
   */
  stageCommit(payloads: readonly Uint8Array[]): TxLsns {
    const wholeBytes = batchPayloadBytes(payloads);
    // One frame holds them all, nearly always: then no batch list is made (a commit's garbage is GC's work).
    const batches = wholeBytes <= MAX_BATCH_PAYLOAD_BYTES ? null : splitIntoBatches(payloads);
    this.lsns.ensureAvailable((batches?.length ?? 1) + 2);
    this.rotateIfFull();
    if (batches === null && this.active.formatVersion >= COMMIT_RECORD_VERSION) return this.stageCommitRecord(payloads, wholeBytes);
    return this.stageThreeRecords(batches ?? [{ events: payloads, payloadBytes: wholeBytes }]);
  }

  /** TxBegin + MutationBatch(es) + TxCommit. */
  private stageThreeRecords(batches: readonly Batch[]): TxLsns {
    const count = batches.length + 2;
    let bytes = 2 * FRAME_OVERHEAD;
    for (const batch of batches) bytes += FRAME_OVERHEAD + batch.payloadBytes;
    const beginLsn = this.lsns.take(count);
    const { target, offset } = this.reserve(bytes);
    let at = writeFrame(target, offset, RecordKind.TxBegin, beginLsn, 0, null);
    let lsn = beginLsn;
    for (const batch of batches) {
      at = writeBatchFrame(target, at, RecordKind.MutationBatch, ++lsn, beginLsn, batch.events, batch.payloadBytes);
    }
    writeFrame(target, at, RecordKind.TxCommit, ++lsn, beginLsn, null);
    this.recordsEndAt(lsn, 1);
    return { beginLsn, commitLsn: lsn };
  }

  /** A whole transaction in one frame: one length, one CRC, where three frames would take 75 bytes of framing. */
  private stageCommitRecord(events: readonly Uint8Array[], payloadBytes: number): TxLsns {
    const beginLsn = this.lsns.take(COMMIT_RECORD_SPAN + 1);
    const commitLsn = beginLsn + COMMIT_RECORD_SPAN;
    const { target, offset } = this.reserve(FRAME_OVERHEAD + payloadBytes);
    writeBatchFrame(target, offset, RecordKind.Commit, commitLsn, beginLsn, events, payloadBytes);
    this.recordsEndAt(commitLsn, 1);
    return { beginLsn, commitLsn };
  }

  stageTxBegin(): number {
    this.lsns.ensureAvailable(1);
    this.rotateIfFull();
    const lsn = this.stageMarker(RecordKind.TxBegin, 0);
    this.spans.begun(lsn);
    return lsn;
  }

  stageMutation(beginLsn: number, payload: Uint8Array): number {
    this.lsns.ensureAvailable(1);
    const lsn = this.lsns.take(1);
    const { target, offset } = this.reserve(FRAME_OVERHEAD + payload.length);
    writeFrame(target, offset, RecordKind.Mutation, lsn, beginLsn, payload);
    this.recordsEndAt(lsn);
    return lsn;
  }

  /** One or more MutationBatch records; returns the last one's LSN. */
  stageBatch(beginLsn: number, payloads: readonly Uint8Array[]): number {
    const batches = splitIntoBatches(payloads);
    this.lsns.ensureAvailable(batches.length);
    let bytes = 0;
    for (const batch of batches) bytes += FRAME_OVERHEAD + batch.payloadBytes;
    let lsn = this.lsns.take(batches.length) - 1;
    let { target, offset: at } = this.reserve(bytes);
    for (const batch of batches) {
      at = writeBatchFrame(target, at, RecordKind.MutationBatch, ++lsn, beginLsn, batch.events, batch.payloadBytes);
    }
    this.recordsEndAt(lsn);
    return lsn;
  }

  /** TxCommit or TxAbort of a `begin()` transaction. */
  stageTxEnd(beginLsn: number, kind: RecordKind.TxCommit | RecordKind.TxAbort): number {
    const lsn = this.stageMarker(kind, beginLsn);
    this.spans.ended(beginLsn, lsn);
    return lsn;
  }

  /** A replica's record of one whole transaction at its source's LSNs (the commit LSN must be above every LSN so far). */
  stageReplicated(tx: { beginLsn: number; commitLsn: number; events: readonly Uint8Array[] }, streamSeq: number): TxLsns {
    if (tx.commitLsn < this.lsns.nextLsn || tx.beginLsn < 1 || tx.beginLsn > tx.commitLsn) {
      throw new WalError(
        'WAL_INVALID_OPTIONS',
        `invalid argument \`tx\`: a replicated transaction with begin LSN ${tx.beginLsn} and commit LSN ${tx.commitLsn} does not follow LSN ${this.lsns.lastLsn}`,
      );
    }
    const bytes = replicatedFrameBytes(tx.events);
    // A source transaction may span several frames; a replica keeps each in one, and a longer one no open accepts.
    if (bytes > MAX_FRAME_BYTES) {
      throw new WalError('WAL_INVALID_EVENT', `appendReplicated(): the transaction's events take ${bytes} bytes as one record, over the limit of ${MAX_FRAME_BYTES} bytes`);
    }
    this.rotateIfFull();
    const { target, offset } = this.reserve(bytes);
    writeReplicatedFrame(target, offset, { ...tx, streamSeq });
    this.recordsEndAt(this.lsns.takeAt(tx.commitLsn), 1);
    return { beginLsn: tx.beginLsn, commitLsn: tx.commitLsn };
  }

  stageCheckpoint(snapshotLsn: number): number {
    return this.stageMarker(RecordKind.Checkpoint, snapshotLsn);
  }

  private stageMarker(kind: RecordKind, txBeginLsn: number): number {
    this.lsns.ensureAvailable(1);
    const lsn = this.lsns.take(1);
    const { target, offset } = this.reserve(FRAME_OVERHEAD);
    writeFrame(target, offset, kind, lsn, txBeginLsn, null);
    this.recordsEndAt(lsn, kind === RecordKind.TxCommit ? 1 : 0);
    return lsn;
  }

  private reserve(bytes: number): { target: Buffer; offset: number } {
    const segment = this.active;
    segment.staging ??= new Staging();
    segment.stagedEnd += bytes;
    return segment.staging.reserve(bytes);
  }

  /** The records staged so far end at `lsn`; `commits` of the ones just staged end a transaction. */
  private recordsEndAt(lsn: number, commits = 0): void {
    const segment = this.active;
    segment.lastLsn = lsn;
    segment.staging?.recordsEndAt(lsn, commits);
    this.commitsStaged += commits;
  }

  /** Rotation (docs/FORMAT.md, "The sealed flag"): only between transactions, once the active segment is full. */
  private rotateIfFull(): void {
    const full = this.active;
    if (full.stagedEnd < this.segmentBytes) return;
    if (full.id >= MAX_SEGMENT_ID) {
      throw new WalError('WAL_LSN_EXHAUSTED', `segment ids are exhausted at ${segmentFileName(full.id)}`);
    }
    full.sealWhenWritten = true;
    this.spans.segmentEnded(full.id);
    this.segments.push(plannedSegment(this.dir, full.id + 1, this.lsns.nextLsn, this.replica));
  }
}

interface Batch {
  events: readonly Uint8Array[];
  payloadBytes: number;
}

/** The largest MutationBatch or Commit payload: what one frame holds. */
const MAX_BATCH_PAYLOAD_BYTES = MAX_FRAME_BYTES - FRAME_OVERHEAD;

/** Splits events into MutationBatch payloads that each fit one frame (docs/DESIGN.md). */
function splitIntoBatches(events: readonly Uint8Array[]): Batch[] {
  const limit = MAX_BATCH_PAYLOAD_BYTES;
  const batches: Batch[] = [];
  let start = 0;
  let bytes = BATCH_COUNT_BYTES;
  for (let i = 0; i < events.length; i++) {
    const entry = BATCH_ENTRY_OVERHEAD + (events[i] as Uint8Array).length;
    if (bytes + entry > limit && i > start) {
      batches.push({ events: events.slice(start, i), payloadBytes: bytes });
      start = i;
      bytes = BATCH_COUNT_BYTES;
    }
    bytes += entry;
  }
  batches.push({ events: events.slice(start), payloadBytes: bytes });
  return batches;
}
