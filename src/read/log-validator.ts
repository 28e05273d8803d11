import { constants as osConstants } from 'node:os';
import { WalError, describeLocation } from '../errors.js';
import { COMMIT_RECORD_SPAN, COMMIT_RECORD_VERSION, HEADER_BYTES, RecordKind, firstLsnOf } from '../format/constants.js';
import type { DecodedFrame, FrameReadResult } from '../format/frame.js';
import { decodeSegmentHeader, type SegmentHeader } from '../format/header.js';
import type { IoProgram } from '../io/program.js';
import type { FrameChecksums } from '../io/types.js';
import type { RecentWrites } from '../recent-writes.js';
import type { TornTail, WalRecord } from '../types.js';
import { SegmentSource, type FramesAfterDamage, type Reuse } from './segment-source.js';
import { listSegments, type SegmentRef } from './segments.js';

/*
 * The frame and segment validator: every path that reads a log (open,
 * replayDir, readWal, readTransactions, following, the CLI) reads it through
 * this class, in the spirit of LevelDB's log::Reader. It walks the segments
 * in id order and checks what docs/FORMAT.md and docs/DESIGN.md require of
 * frames and segments: consecutive ids, headers, dense LSNs within and across
 * segments (a Commit record spans three), damage (refused anywhere but in the last unsealed segment, where
 * it is a torn tail). Transactions are the TxAssembler's business.
 *
 * Followed, the last segment is not final: at the end of what it holds now
 * the validator reports `caughtUp`, and the next call reads on from the same
 * offset. A later segment appearing means the earlier one is whole (rotation
 * seals a segment before creating the next), so from then on it is checked
 * as a segment that is not the last.
 */

/** A record that passed every frame-level check. Its payload is a view into the reader's window. */
export type ScannedRecord = WalRecord & Pick<DecodedFrame, 'length'> & {
  /** The segment's path (for messages). */
  file: string;
};

/** Consecutive Commit records as the log holds them: their frames (a view into the reader's window), how many, the last one's LSN. */
export interface CommitFrames {
  frames: Buffer;
  count: number;
  lastCommitLsn: number;
}

/** One segment read to its end. */
export interface ScannedSegment {
  ref: SegmentRef;
  baseLsn: number;
  /** LSN of the last good record; baseLsn − 1 when it holds none. */
  lastLsn: number;
  sealed: boolean;
  /** Its header says it belongs to a replica. */
  replica: boolean;
  /** Its header's format version (1 or 2). */
  formatVersion: number;
  /** Offset just after the last good frame. */
  dataEnd: number;
  records: number;
  tornTail: TornTail | null;
  /** It is the last segment of the log (as listed when the read started, or last when followed). */
  isLast: boolean;
}

export type ValidatorStep =
  | { type: 'record'; record: ScannedRecord }
  | { type: 'segment'; segment: ScannedSegment }
  /** The last segment holds a missing, zero or partial header and no record: a crash while creating it. */
  | { type: 'unfinished'; ref: SegmentRef }
  /**
   * Followed: a truncation removed segments this reader had not read yet,
   * holding only records below `neededFromLsn`; reading goes on at `baseLsn`.
   */
  | { type: 'skipped'; baseLsn: number }
  /** Followed: nothing more for now. */
  | { type: 'caughtUp' }
  | { type: 'end' };

export interface ValidatorOptions {
  checksums: FrameChecksums;
  /** Lets the window's memory be reused (see SegmentSource); null: every refill reads into a new buffer. */
  reuse: Reuse | null;
  /** Follow a live log instead of ending at the last segment. */
  follow: boolean;
  /** fdatasync every read of the last segment before its records are handed over (see SegmentSource); the others are sealed. */
  syncReads?: boolean;
  /**
   * Records below it are not needed: when a live Wal's truncation removes
   * segments before this reader got to them, holding only such records, the
   * reader goes on after them. Default 1: every record is needed.
   */
  neededFromLsn?: number;
  /** A live Wal's newest writes, for an in-process reader (see SegmentSource). */
  recent?: RecentWrites;
}

interface OpenSegment {
  source: SegmentSource;
  header: SegmentHeader;
  offset: number;
  records: number;
}

export class LogValidator {
  private index = 0;
  private current: OpenSegment | null = null;
  /** The LSN the next record must carry; null before the first segment. */
  private expectedLsn: number | null = null;
  private previousId: number | null = null;
  private firstBase: number | null = null;
  /** The first segment left after a truncation removed segments this reader had listed. */
  private truncatedBefore: number | null = null;

  constructor(
    private readonly dir: string,
    private refs: SegmentRef[],
    private readonly options: ValidatorOptions,
  ) {}

  /** The base LSN of the first segment read, null before it. Records naming an older TxBegin belong to truncated transactions. */
  get firstBaseLsn(): number | null {
    return this.firstBase;
  }

  /** The LSN the next record will carry (1 for a log with no segment). */
  get nextLsn(): number {
    return this.expectedLsn ?? 1;
  }

  /** The next step; a refusal closes what is open first (a refused log is not read on). */
  *next(): IoProgram<ValidatorStep> {
    try {
      return yield* this.step();
    } catch (error) {
      yield* this.close();
      throw error;
    }
  }

  /**
   * The next record, when the current segment's window holds it and it
   * passes every check: what `next` returns then, without its io program.
   * Null otherwise, and nothing is consumed: `next` reads on, and refuses
   * what must be refused (closing the segment first, which takes io).
   */
  recordInWindow(): ScannedRecord | null {
    const segment = this.current;
    if (segment === null) return null;
    const frame = segment.source.recordInWindow(segment.offset);
    if (frame === null) return null;
    try {
      return this.accept(segment, frame);
    } catch (error) {
      if (error instanceof WalError) return null; // refused by `next`, the same way
      throw error;
    }
  }

  /**
   * Consecutive Commit records from here, while the window holds them and up
   * to commit LSN `maxCommitLsn`, each passing every check `recordInWindow`
   * makes: one view of their frames and no object per record (the shipper's
   * reads; docs/BENCHMARKS.md, "Commit frames as they lie"). It stops before
   * anything else, which `recordInWindow` and `next` then read, and refuse, as
   * always. Null when it took none.
   */
  commitRunInWindow(maxCommitLsn: number): CommitFrames | null {
    const segment = this.current;
    if (segment === null || segment.header.formatVersion < COMMIT_RECORD_VERSION) return null;
    const begin = this.expectedLsn as number;
    const run = segment.source.commitRunInWindow(segment.offset, begin, maxCommitLsn);
    if (run === null) return null;
    const frames = segment.source.windowView(segment.offset, run.end);
    segment.offset = run.end;
    segment.records += run.count;
    this.expectedLsn = begin + run.count * (COMMIT_RECORD_SPAN + 1);
    return { frames, count: run.count, lastCommitLsn: this.expectedLsn - 1 };
  }

  /** Lets the next read see what was appended after the window was filled: for a reader that stopped short of its end. */
  forgetUnread(): void {
    this.current?.source.forget();
  }

  private *step(): IoProgram<ValidatorStep> {
    for (;;) {
      if (this.current === null) {
        const ref = this.refs[this.index];
        if (ref === undefined) {
          if (!this.options.follow) return { type: 'end' };
          if (!(yield* this.listAgain())) return { type: 'caughtUp' };
          continue;
        }
        const opened = yield* this.openSegment(ref);
        if (opened !== null) return opened;
        continue;
      }
      const step = yield* this.readAt(this.current);
      if (step !== null) return step;
    }
  }

  *close(): IoProgram<void> {
    const current = this.current;
    this.current = null;
    if (current !== null) yield* current.source.close();
  }

  /** Followed: picks up segments created since the last listing. True when there is a new one. */
  private *listAgain(): IoProgram<boolean> {
    const known = this.refs[this.refs.length - 1]?.id ?? 0;
    if (this.options.recent?.mayHaveSegmentAfter(known) === false) return false;
    const listed = yield* listSegments(this.dir);
    const later = listed.filter((ref) => ref.id > known);
    const first = later[0];
    if (first === undefined) return false;
    // Truncation deletes the oldest segments first: when the one we know is gone
    // too, the ids before the first one left were created and truncated since.
    if (first.id > known + 1 && !listed.some((ref) => ref.id === known)) this.truncatedBefore = first.id;
    this.refs = [...this.refs, ...later];
    return true;
  }

  private isLast(index: number): boolean {
    return index === this.refs.length - 1;
  }

  /** Opens a segment and checks its header; a step when the segment says something by itself (unfinished, caught up). */
  private *openSegment(ref: SegmentRef): IoProgram<ValidatorStep | null> {
    if (this.previousId !== null && ref.id !== this.previousId + 1 && ref.id !== this.truncatedBefore) {
      // Rotation creates id + 1 only after sealing id, and truncation deletes the
      // oldest first: no crash leaves a hole, so a hole is lost records.
      throw malformed(`segment ${this.previousId + 1} is missing: segment ${ref.id} follows segment ${this.previousId}`, {
        file: ref.path,
        offset: 0,
      });
    }
    const { checksums, reuse, syncReads, recent, follow } = this.options;
    // A segment a later one follows is sealed (rotation seals before it creates the next): whole and
    // durable, so a durable-only reader need not fsync it, and a follower catching up reads it ahead.
    // At the end of the last one a follower reads what is new, not ahead.
    const last = this.isLast(this.index);
    const source = new SegmentSource(ref, checksums, {
      ...(reuse === null ? {} : { reuse }),
      syncAfterRead: syncReads === true && last,
      ...(recent === undefined ? {} : { recent }),
      readAhead: !follow || !last,
    });
    try {
      yield* source.open();
    } catch (error) {
      if ((error as WalError).errno !== osConstants.errno.ENOENT) throw error;
      return yield* this.vanished(ref);
    }
    // Until the segment is the current one, no one else closes its file.
    try {
      let header: SegmentHeader;
      // A failed read is WAL_IO, never taken for a bad header (damage, or a segment being created).
      const headerBytes = yield* source.bytesAt(0, HEADER_BYTES);
      try {
        header = decodeSegmentHeader(headerBytes, ref.path, checksums.crc32);
      } catch (error) {
        const step = yield* this.badHeader(source, error as WalError);
        yield* source.close();
        return step;
      }
      const skipped = ref.id === this.truncatedBefore ? this.skipTruncated(ref, header.baseLsn) : null;
      this.checkBase(ref, header.baseLsn);
      this.previousId = ref.id;
      this.current = { source, header, offset: HEADER_BYTES, records: 0 };
      return skipped;
    } catch (error) {
      yield* source.close();
      throw error;
    }
  }

  /** Reading resumes at `baseLsn` after a truncation; fine only if every record removed was below `neededFromLsn`. */
  private skipTruncated(ref: SegmentRef, baseLsn: number): ValidatorStep | null {
    this.truncatedBefore = null;
    const expected = this.expectedLsn as number;
    if (baseLsn <= expected) return null;
    if (baseLsn > (this.options.neededFromLsn ?? 1)) {
      const where = { file: ref.path, offset: 0, lsn: expected };
      throw new WalError(
        'WAL_LSN_TRUNCATED',
        `records from LSN ${expected} to ${baseLsn - 1} were truncated before this reader read them${describeLocation(where)}`,
        where,
      );
    }
    this.expectedLsn = baseLsn;
    this.firstBase = baseLsn;
    return { type: 'skipped', baseLsn };
  }

  /**
   * A segment listed a moment ago is gone: a live Wal truncated it. Before
   * anything was read the log simply starts later now; after, records the
   * reader needed are gone.
   */
  private *vanished(ref: SegmentRef): IoProgram<null> {
    const remaining = (yield* listSegments(this.dir)).filter((candidate) => candidate.id > ref.id);
    if (this.expectedLsn === null) {
      this.refs = remaining;
      this.index = 0;
      return null;
    }
    // Truncation deletes the oldest first: everything before the first segment left is gone.
    this.refs = [...this.refs.slice(0, this.index), ...remaining];
    this.truncatedBefore = remaining[0]?.id ?? null;
    if (this.truncatedBefore !== null) return null;
    const where = { file: ref.path, offset: 0, lsn: this.expectedLsn };
    throw new WalError('WAL_LSN_TRUNCATED', `segment ${ref.id} was deleted before this reader read it${describeLocation(where)}`, where);
  }

  private *badHeader(source: SegmentSource, error: WalError): IoProgram<ValidatorStep | null> {
    const { ref } = source;
    const last = this.isLast(this.index);
    if (!last) {
      throw malformed(`a segment that is not the last has a bad header: ${error.message}`, { file: ref.path, offset: 0, cause: error });
    }
    // Being created right now: read it again at the next poll, or now if a later segment shows it must be whole.
    if (this.options.follow) return (yield* this.listAgain()) ? null : { type: 'caughtUp' };
    if (error.code === 'WAL_BAD_SEGMENT_HEADER' && (yield* source.nonZeroEnd(HEADER_BYTES)) === HEADER_BYTES) {
      this.index++;
      this.previousId = ref.id;
      return { type: 'unfinished', ref };
    }
    throw error;
  }

  private checkBase(ref: SegmentRef, baseLsn: number): void {
    if (this.expectedLsn === null) {
      this.firstBase = baseLsn;
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
  }

  private *readAt(segment: OpenSegment): IoProgram<ValidatorStep | null> {
    const { source, offset } = segment;
    const { result } = yield* source.frameAt(offset);
    if (result.status === 'record') return { type: 'record', record: this.accept(segment, result.frame) };
    const last = this.isLast(this.index);
    if (last && this.options.follow) {
      // The end of what is there now, or a frame being written. A later segment
      // means this one is whole: read it again as a segment that is not the last.
      if (!(yield* this.listAgain())) {
        source.forget();
        return { type: 'caughtUp' };
      }
      source.forget();
      return null;
    }
    return yield* this.endSegment(segment, result, last);
  }

  private accept(segment: OpenSegment, frame: DecodedFrame): ScannedRecord {
    const expected = this.expectedLsn as number;
    const { ref } = segment.source;
    const where = { file: ref.path, offset: segment.offset, lsn: frame.lsn };
    if (frame.lsn === -1) throw malformed('record LSN is above 2^53-1', { ...where, lsn: undefined });
    if (frame.txBeginLsn === -1) throw malformed('tx_begin_lsn is above 2^53-1', where);
    if (frame.kind === RecordKind.Replicated) this.checkReplicated(segment, frame, expected, where);
    else checkDense(frame, segment.header.formatVersion, expected, where);
    const record: ScannedRecord = {
      kind: frame.kind,
      lsn: frame.lsn,
      txBeginLsn: frame.txBeginLsn,
      payload: frame.payload,
      segmentId: ref.id,
      offset: segment.offset,
      length: frame.length,
      file: ref.path,
    };
    this.expectedLsn = frame.lsn + 1;
    segment.offset += frame.length;
    segment.records++;
    return record;
  }

  /**
   * A replica's record of one transaction at its source's LSNs: it covers the
   * LSNs since the record before it (the source's records that were not
   * replicated), so it may skip LSNs, never go back (docs/FORMAT.md).
   */
  private checkReplicated(segment: OpenSegment, frame: DecodedFrame, expected: number, where: { file: string; offset: number; lsn: number }): void {
    if (!segment.header.replica) throw malformed('a Replicated record in a segment that does not belong to a replica', where);
    if (frame.lsn < expected) throw malformed(`Replicated record LSN ${frame.lsn} is not above the previous LSN ${expected - 1}`, where);
    if (frame.txBeginLsn < 1 || frame.txBeginLsn > frame.lsn) {
      throw malformed(`Replicated record names begin LSN ${frame.txBeginLsn}, not in 1..${frame.lsn}`, where);
    }
  }

  /** The bytes at the segment's offset are not a frame: its clean end, a torn tail, or damage that refuses the log. */
  private *endSegment(segment: OpenSegment, result: FrameReadResult, last: boolean): IoProgram<ValidatorStep> {
    const { source, header, offset } = segment;
    const { ref } = source;
    const trailingEnd = yield* source.nonZeroEnd(offset);
    let tornTail: TornTail | null = null;
    if (result.status !== 'end' || trailingEnd > offset) {
      const after = yield* source.framesAfterDamage(offset, trailingEnd, this.expectedLsn as number);
      const cause = describeDamage(result, after);
      // A sealed segment was whole and fsync'd before its flag was set: damage
      // there is corruption, not a torn write, even in the last segment.
      if (!last || header.sealed) {
        throw malformed(`damage in a ${last ? 'sealed segment' : 'segment that is not the last'}: ${cause}`, {
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
    }
    yield* source.close();
    this.current = null;
    this.index++;
    const segmentStep: ScannedSegment = {
      ref,
      baseLsn: header.baseLsn,
      lastLsn: (this.expectedLsn as number) - 1,
      sealed: header.sealed,
      replica: header.replica,
      formatVersion: header.formatVersion,
      dataEnd: offset,
      records: segment.records,
      tornTail,
      isLast: last,
    };
    return { type: 'segment', segment: segmentStep };
  }
}

/** Dense LSNs: a record's first LSN is one above the previous record's last. */
function checkDense(frame: DecodedFrame, formatVersion: number, expected: number, where: { file: string; offset: number; lsn: number }): void {
  if (frame.kind === RecordKind.Commit) checkCommitRecord(frame, formatVersion, where);
  const first = firstLsnOf(frame);
  if (first === expected) return;
  throw malformed(
    first < expected
      ? `record LSN ${first} is not above the previous LSN ${expected - 1} (or is below its segment's base)`
      : `record LSN ${first} skips LSN ${expected}: records are missing`,
    { ...where, lsn: first },
  );
}

/** A Commit record belongs in a version 2 segment and spans exactly its transaction's three LSNs (docs/FORMAT.md). */
function checkCommitRecord(frame: DecodedFrame, formatVersion: number, where: { file: string; offset: number; lsn: number }): void {
  if (formatVersion < COMMIT_RECORD_VERSION) {
    throw malformed(`a Commit record in a format version ${formatVersion} segment (Commit records need version ${COMMIT_RECORD_VERSION})`, where);
  }
  if (frame.lsn - frame.txBeginLsn !== COMMIT_RECORD_SPAN) {
    throw malformed(`a Commit record spans LSN ${frame.txBeginLsn}..${frame.lsn}, not its begin LSN + ${COMMIT_RECORD_SPAN}`, where);
  }
}

/** Why the bytes at a frame boundary are not the next frame, and whether valid frames follow. */
function describeDamage(result: FrameReadResult, after: FramesAfterDamage): string {
  const what = result.status === 'damage' ? `${result.code}: ${result.reason}` : 'non-zero bytes after the end-of-log marker';
  if (after.lsnRange === null) return what;
  const { first, last } = after.lsnRange;
  return `${what}; ${after.count} valid frame${after.count === 1 ? '' : 's'} (LSN ${first}..${last}) follow the damage`;
}

export function malformed(
  message: string,
  details: { file: string; offset?: number; lsn?: number | null | undefined; cause?: unknown },
): WalError {
  const lsn = details.lsn ?? undefined;
  const where = { file: details.file, offset: details.offset, lsn };
  return new WalError('WAL_MALFORMED', `${message}${describeLocation(where)}`, { ...where, cause: details.cause });
}
