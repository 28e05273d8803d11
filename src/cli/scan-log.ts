import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { WalError, describeLocation } from '../errors.js';
import { MAX_LSN, RECORD_KIND_NAMES, RecordKind, firstLsnOf } from '../format/constants.js';
import { recordEvents } from '../format/frame.js';
import type { SegmentHeader } from '../format/header.js';
import { parseSegmentId } from '../format/segment-name.js';
import { jsIo } from '../io/js.js';
import { call, runAsync, type IoProgram } from '../io/program.js';
import type { WalIo } from '../io/types.js';
import { LOG_ID_FILE_NAME, readLogId } from '../log-id.js';
import { LogValidator, type ScannedSegment, type ValidatorStep } from '../read/log-validator.js';
import { listSegments, segmentHeaderAndSize, type SegmentRef } from '../read/segments.js';
import { TxAssembler } from '../read/tx-assembler.js';
import { attempt } from '../segment-files.js';
import type { TornTail } from '../types.js';
import { CliError } from './usage.js';

/*
 * The one read-only pass every command makes: the validator and assembler
 * Wal.open reads with (src/read/), over node:fs, with no lock taken and no
 * file changed, so it works on a log a live Wal is writing.
 *
 * The scan runs with the highest fence (MAX_LSN) and records which records
 * only that fence let through (`covered`): `verify` then knows, from one pass,
 * what open with any lower fence would refuse. When the validator refuses a
 * segment, the problem is kept and a fresh reader resumes at the next
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
  /** Events in Mutation, MutationBatch and Commit records. */
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
  /** Called as each segment has been read. */
  onSegment?: (index: number, count: number) => void;
  /** The io the scan reads through (tests pass one that observes or interferes). Default: node:fs. */
  io?: WalIo;
}

/** Times the scan starts over when a segment vanishes under it (a live Wal truncating). */
const SCAN_ATTEMPTS = 5;

/**
 * Refuses a directory that holds no log, rather than report it as an empty
 * one. A log has a segment file, or at least its identity: open writes
 * `.segwal.id` before the first segment, so a directory with only the id is a
 * log being created (or whose creation a crash cut short; the next open
 * finishes it), and reads as an empty log.
 */
export async function requireLog(dir: string, io: WalIo = jsIo): Promise<void> {
  const root = path.resolve(dir);
  const names = await runAsync(io, attempt('list directory', root, call('listDir', root)));
  if (names.includes(LOG_ID_FILE_NAME) || names.some((name) => parseSegmentId(name) !== null)) return;
  throw new CliError(`not a segwal log: ${root} holds no segment file and no ${LOG_ID_FILE_NAME}`);
}

/**
 * The log's id (null when it has none yet), or the problem with its identity
 * file. Open reads `.segwal.id` before any segment and refuses one that holds
 * no log id (WAL_MALFORMED), so a report on the log lists that as damage, and
 * first, rather than stop (exit 2, as for an I/O error) or say nothing of it.
 * An I/O error still ends the command.
 */
export async function readLogIdentity(dir: string, io: WalIo = jsIo): Promise<{ logId: string | null; problems: WalError[] }> {
  try {
    return { logId: await runAsync(io, readLogId(path.resolve(dir))), problems: [] };
  } catch (error) {
    if (!(error instanceof WalError) || error.code !== 'WAL_MALFORMED') throw error;
    return { logId: null, problems: [error] };
  }
}

export async function scanLog(dir: string, options: ScanLogOptions = {}): Promise<LogScan> {
  await requireLog(dir, options.io);
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

/**
 * Damage with valid frames after it in the last segment, or null. readWal
 * (and so dump) stops there without a word, as at a torn write, which would
 * leave the records after it out of a dump that exits 0; the other commands
 * call it damage (exit 1). Read again a few times before it counts, as
 * scanLog does: a live Wal's write caught half copied can look like it.
 */
export async function lastSegmentTailDamage(dir: string, io: WalIo = jsIo): Promise<WalError | null> {
  const root = path.resolve(dir);
  for (let attemptNo = 1; ; attemptNo++) {
    let problem: WalError | null;
    try {
      problem = await runAsync(io, tailDamageOnce(root));
    } catch (error) {
      if (!isVanished(error) || attemptNo === SCAN_ATTEMPTS) throw error;
      continue;
    }
    if (problem === null || attemptNo === SCAN_ATTEMPTS) return problem;
    await new Promise((resolve) => setTimeout(resolve, RESCAN_DELAY_MS));
  }
}

/** Reads the last segment on its own (as if the log began there), to its torn tail. */
function* tailDamageOnce(root: string): IoProgram<WalError | null> {
  const last = (yield* listSegments(root)).at(-1);
  if (last === undefined) return null;
  const validator = new LogValidator(root, [last], { checksums: jsIo, reuse: null, follow: false });
  try {
    for (;;) {
      const step = yield* validator.next();
      if (step.type === 'record' || step.type === 'skipped') continue;
      if (step.type !== 'segment') return null; // an unfinished header, or no segment left
      const tail = step.segment.tornTail;
      return tail !== null && tail.validFramesAfter > 0 ? tailDamageProblem(last, tail) : null;
    }
  } finally {
    yield* validator.close();
  }
}

/** A segment listed a moment ago is gone: truncation by a live Wal. The scan starts over. */
class VanishedSegment extends Error {
  constructor(readonly ioError: WalError) {
    super(ioError.message);
  }
}

function isVanished(error: unknown): error is WalError {
  return error instanceof WalError && (error.code === 'WAL_LSN_TRUNCATED' || error.errno === osConstants.errno.ENOENT);
}

async function scanOnce(root: string, options: ScanLogOptions): Promise<LogScan> {
  const io = options.io ?? jsIo;
  const refs: SegmentRef[] = await runAsync(io, listSegments(root));
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
  const found: Array<{ ref: SegmentRef; scanned: ScannedSegment | null; state: SegmentState; records: number; lastLsn: number | null; problem: WalError | null }> = [];
  let inSegment = { records: 0, lastLsn: null as number | null };
  let remaining = refs;
  let atLogStart = true;
  let openAtEnd: number | null = null;
  while (remaining.length > 0) {
    // Raw records: the highest fence, so every record of a transaction begun
    // before the first segment passes, and `covered` says which ones a lower
    // fence would refuse. A reader resumed after damage has lost the
    // transactions begun before it: what it lets through says nothing then.
    const fromStart = atLogStart;
    const assembler = new TxAssembler(MAX_LSN, { covered: (record) => fromStart && covered.push({ file: record.file, offset: record.offset, lsn: record.lsn, txBeginLsn: record.txBeginLsn }) });
    const validator = new LogValidator(root, remaining, { checksums: jsIo, reuse: null, follow: false });
    try {
      await runAsync(io, readAll(validator, assembler, (step) => {
        if (step.type === 'record') {
          const { record } = step;
          inSegment.records++;
          inSegment.lastLsn = record.lsn;
          tally.firstLsn ??= firstLsnOf(record);
          tally.lastLsn = record.lsn;
          tally.byKind[RECORD_KIND_NAMES[record.kind]]! += 1;
          tally.events += recordEvents(record)?.length ?? 0;
          if (record.kind === RecordKind.Checkpoint) tally.lastCheckpointSnapshot = record.txBeginLsn;
          return;
        }
        options.onSegment?.(found.length, refs.length);
        const scanned = step.type === 'segment' ? step.segment : null;
        const ref = step.type === 'segment' ? step.segment.ref : step.ref;
        const tail = scanned?.tornTail ?? null;
        const problem = tail !== null && tail.validFramesAfter > 0 ? tailDamageProblem(ref, tail) : null;
        if (problem !== null) problems.push(problem);
        const state: SegmentState = scanned === null ? 'unfinished header' : tail !== null ? 'torn tail' : scanned.sealed ? 'sealed' : 'active';
        found.push({ ref, scanned, state, ...inSegment, problem });
        inSegment = { records: 0, lastLsn: null };
      }));
      openAtEnd = problems.length === 0 ? assembler.finish() : null;
      break;
    } catch (error) {
      if (isVanished(error)) throw new VanishedSegment(error);
      if (!(error instanceof WalError) || error.code === 'WAL_IO') throw error;
      // The validator refused the segment it was in: keep the problem, and resume at the next segment, as if the log began there.
      const damagedId = remaining.find((ref) => ref.path === error.file)?.id ?? remaining[0]!.id;
      const damaged = remaining.find((ref) => ref.id === damagedId)!;
      problems.push(error);
      found.push({ ref: damaged, scanned: null, state: 'damaged', ...inSegment, problem: error });
      inSegment = { records: 0, lastLsn: null };
      remaining = remaining.filter((ref) => ref.id > damagedId);
      atLogStart = false;
    }
  }
  tally.openAtEnd = openAtEnd;
  const segments: SegmentSummary[] = [];
  for (const entry of found) {
    let found;
    try {
      found = await runAsync(io, segmentHeaderAndSize(entry.ref, jsIo));
    } catch (error) {
      throw isVanished(error) ? new VanishedSegment(error) : error;
    }
    const { header, fileBytes } = found;
    segments.push({ id: entry.ref.id, file: entry.ref.path, fileBytes, header, scanned: entry.scanned, state: entry.state, records: entry.records, lastLsn: entry.lastLsn, problem: entry.problem });
  }
  return { segments, problems, covered, tally };
}

/** Reads the whole log, handing every step (but the end) to `onStep` and every record to the assembler. */
function* readAll(
  validator: LogValidator,
  assembler: TxAssembler,
  onStep: (step: Extract<ValidatorStep, { type: 'record' | 'segment' | 'unfinished' }>) => void,
): IoProgram<void> {
  try {
    for (;;) {
      const step = yield* validator.next();
      if (step.type === 'end' || step.type === 'caughtUp') return;
      if (step.type === 'skipped') continue; // only a follower skips
      if (step.type === 'record') assembler.push(step.record, validator.firstBaseLsn as number);
      onStep(step);
    }
  } finally {
    // The assembler's refusal leaves the segment it was in open.
    yield* validator.close();
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
