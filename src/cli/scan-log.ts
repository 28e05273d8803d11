import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { WalError, describeLocation } from '../errors.js';
import { MAX_LSN, RECORD_KIND_NAMES, RecordKind } from '../format/constants.js';
import { referenceCrc32 } from '../format/crc.js';
import { batchEvents } from '../format/frame.js';
import { decodeSegmentHeader, type SegmentHeader } from '../format/header.js';
import { jsIo } from '../io/js.js';
import { call, runAsync } from '../io/program.js';
import { LogScanner, listSegments, type ScannedSegment, type SegmentRef } from '../replay.js';
import { attempt } from '../segment-files.js';
import type { TornTail } from '../types.js';
import { TxSpans } from '../tx-spans.js';

/*
 * The one read-only pass every command makes: the LogScanner Wal.open runs,
 * over node:fs reads, with no lock taken and no file changed, so it works on a
 * log a live Wal is writing.
 *
 * The scan runs with the highest fence (MAX_LSN) and records which records
 * only that fence let through (`covered`): `verify` then knows, from one pass,
 * what open with any lower fence would refuse. When the scanner refuses a
 * segment, the problem is kept and a fresh scanner resumes at the next
 * segment, so one run reports the damage in every segment, not just the first.
 */

export type SegmentState = 'sealed' | 'active' | 'torn tail' | 'unfinished header' | 'damaged';

export interface SegmentSummary {
  id: number;
  file: string;
  /** The file's size as read. */
  fileBytes: number;
  /** The decoded header; null when it does not decode. */
  header: SegmentHeader | null;
  /** What the scanner found; null for an unfinished header or a damaged segment. */
  scanned: ScannedSegment | null;
  state: SegmentState;
  /** Records that passed every check (up to the damage, in a damaged segment). */
  records: number;
  /** LSN of the last of those records; null when none. */
  lastLsn: number | null;
  /** Why the scanner refused this segment; null when it did not. */
  problem: WalError | null;
}

/** A record accepted only because its transaction's TxBegin was truncated away and the fence covers it. */
export interface CoveredRecord {
  file: string;
  offset: number;
  lsn: number;
  txBeginLsn: number;
}

export interface RecordTally {
  byKind: Record<string, number>;
  /** Events in Mutation and MutationBatch records. */
  events: number;
  firstLsn: number | null;
  lastLsn: number | null;
  /** The snapshot LSN of the last Checkpoint record (0 when none): the fence a reopen after `checkpoint()` passes. */
  lastCheckpointSnapshot: number;
  /** Transactions begun and not ended by the end of the log; null when damage broke the scan's view of them. */
  openAtEnd: number | null;
}

export interface LogScan {
  segments: SegmentSummary[];
  /** Everything the scanner refused, in log order; the first is what open would report. */
  problems: WalError[];
  covered: CoveredRecord[];
  tally: RecordTally;
}

export interface ScanLogOptions {
  /** Called before each segment is read. */
  onSegment?: (index: number, count: number) => void;
}

/** Times the scan starts over when a segment vanishes under it (a live Wal truncating). */
const SCAN_ATTEMPTS = 5;

export async function scanLog(dir: string, options: ScanLogOptions = {}): Promise<LogScan> {
  const root = path.resolve(dir);
  for (let attemptNo = 1; ; attemptNo++) {
    let scan: LogScan;
    try {
      scan = await scanOnce(root, options);
    } catch (error) {
      if (!(error instanceof VanishedSegment)) throw error;
      if (attemptNo === SCAN_ATTEMPTS) throw error.ioError;
      continue;
    }
    // A reader that copies pages while a Wal writes can catch a frame half
    // copied with whole frames after it; damage that stays is real.
    if (!scan.problems.some(isTailDamage) || attemptNo === SCAN_ATTEMPTS) return scan;
    await new Promise((resolve) => setTimeout(resolve, RESCAN_DELAY_MS));
  }
}

const RESCAN_DELAY_MS = 20;
const tailDamageProblems = new WeakSet<WalError>();

function isTailDamage(problem: WalError): boolean {
  return tailDamageProblems.has(problem);
}

/** Valid frames after damage in the last segment: what open cuts (and keeps in quarantine) or refuses. */
function tailDamageProblem(ref: SegmentRef, tail: TornTail): WalError {
  const where = { file: ref.path, offset: tail.offset };
  const problem = new WalError(
    'WAL_MALFORMED',
    `damage in the last segment with valid frames after it: ${tail.cause}; open cuts there (keeping the cut bytes in a quarantine file), or refuses with tailDamage: 'refuse'${describeLocation(where)}`,
    where,
  );
  tailDamageProblems.add(problem);
  return problem;
}

/** A segment listed a moment ago is gone: truncation by a live Wal. The scan starts over. */
class VanishedSegment extends Error {
  constructor(readonly ioError: WalError) {
    super(ioError.message);
  }
}

async function scanOnce(root: string, options: ScanLogOptions): Promise<LogScan> {
  const refs: SegmentRef[] = await runAsync(jsIo, attempt('list directory', root, listSegments(root)));
  const tally: RecordTally = {
    byKind: Object.fromEntries(Object.values(RECORD_KIND_NAMES).map((name) => [name, 0])),
    events: 0,
    firstLsn: null,
    lastLsn: null,
    lastCheckpointSnapshot: 0,
    openAtEnd: null,
  };
  const covered: CoveredRecord[] = [];
  const problems: WalError[] = [];
  const segments: SegmentSummary[] = [];
  let inSegment = { records: 0, lastLsn: null as number | null };
  // A scanner resumed after damage has lost the transactions begun before it:
  // what it lets through under the fence says nothing about the real log start.
  const newScanner = (atLogStart: boolean) =>
    new LogScanner({
      checkpointLsn: MAX_LSN,
      crc32: referenceCrc32,
      spans: new TxSpans(),
      onRecord: (record) => {
        inSegment.records++;
        inSegment.lastLsn = record.lsn;
        tally.firstLsn ??= record.lsn;
        tally.lastLsn = record.lsn;
        tally.byKind[RECORD_KIND_NAMES[record.kind]]! += 1;
        if (record.kind === RecordKind.Mutation) tally.events += 1;
        if (record.kind === RecordKind.MutationBatch) tally.events += batchEvents(record.payload).length;
        if (record.kind === RecordKind.Checkpoint) tally.lastCheckpointSnapshot = record.txBeginLsn;
      },
      onCoveredBySnapshot: (record, where) => {
        if (atLogStart) covered.push({ ...where, ...record });
      },
    });
  let scanner = newScanner(true);
  for (const [index, ref] of refs.entries()) {
    options.onSegment?.(index, refs.length);
    const bytes = await readSegment(ref);
    inSegment = { records: 0, lastLsn: null };
    const summary = { id: ref.id, file: ref.path, fileBytes: bytes.length, header: decodeHeader(bytes, ref.path) };
    try {
      const scanned = scanner.scan(ref, bytes, index === refs.length - 1);
      const state: SegmentState = scanned === null ? 'unfinished header' : scanned.tornTail !== null ? 'torn tail' : scanned.sealed ? 'sealed' : 'active';
      const tail = scanned?.tornTail ?? null;
      const problem = tail !== null && tail.validFramesAfter > 0 ? tailDamageProblem(ref, tail) : null;
      if (problem !== null) problems.push(problem);
      segments.push({ ...summary, scanned, state, ...inSegment, problem });
    } catch (error) {
      if (!(error instanceof WalError) || error.code === 'WAL_IO') throw error;
      problems.push(error);
      segments.push({ ...summary, scanned: null, state: 'damaged', ...inSegment, problem: error });
      scanner = newScanner(false); // resume at the next segment, as if the log began there
    }
    scanner.takeCommitted(); // only the checks matter here, not the events
  }
  const totals = scanner.finish();
  tally.openAtEnd = problems.length === 0 ? totals.incompleteTransactions : null;
  return { segments, problems, covered, tally };
}

async function readSegment(ref: SegmentRef): Promise<Buffer> {
  try {
    return await runAsync(jsIo, attempt('read segment', ref.path, call('readFile', ref.path)));
  } catch (error) {
    if (error instanceof WalError && error.code === 'WAL_IO' && error.errno === osConstants.errno.ENOENT) {
      throw new VanishedSegment(error);
    }
    throw error;
  }
}

function decodeHeader(bytes: Buffer, file: string): SegmentHeader | null {
  try {
    return decodeSegmentHeader(bytes, file, referenceCrc32);
  } catch {
    return null;
  }
}

/**
 * What open with `checkpointLsn` as its fence would refuse besides `scan.problems`:
 * the covered records above that fence, as the scanner words them.
 */
export function refusedBelowFence(scan: LogScan, checkpointLsn: number): WalError[] {
  return scan.covered
    .filter((record) => record.lsn > checkpointLsn)
    .map((record) => {
      const where = { file: record.file, offset: record.offset, lsn: record.lsn };
      return new WalError(
        'WAL_MALFORMED',
        `record names TxBegin LSN ${record.txBeginLsn}, which never came or already ended (a fence of ${record.lsn} or more would cover it)${describeLocation(where)}`,
        where,
      );
    });
}
