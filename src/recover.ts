import path from 'node:path';
import { WalError, toIoError } from './errors.js';
import { LOCK_FILE_NAME } from './format/constants.js';
import { call, settle, type IoProgram } from './io/program.js';
import type { LockToken, WalIo } from './io/types.js';
import { makeLogDir } from './log-dir.js';
import { LOCK_WAIT_MS, type NormalizedOptions } from './options.js';
import {
  LogScanner,
  decodeError,
  listSegments,
  type CommittedTx,
  type ScanOptions,
  type ScanTotals,
  type ScannedSegment,
  type SegmentRef,
} from './replay.js';
import { SPARE_FILE_NAME, attempt, createSegmentFile, prepareSegmentFile, type SegmentFileConfig } from './segment-files.js';
import { TxSpans } from './tx-spans.js';
import type { Codec, Recovery, ReplayHandler } from './types.js';
import { newSegment, type Segment } from './writer.js';

/** What open hands to the Wal: the log as found, repaired and ready to append. */
export interface Recovered<Out> {
  lock: LockToken;
  segments: Segment[];
  nextLsn: number;
  /** The snapshot LSN of the last Checkpoint record (0 when none). */
  lastCheckpointSnapshot: number;
  spans: TxSpans;
  recovery: Recovery;
  events: Out[];
}

/** SPEC §6: create the directory, take the lock, replay, repair the tail. */
export function* recoverProgram<In, Out>(io: WalIo, options: NormalizedOptions<In, Out>): IoProgram<Recovered<Out>> {
  const { dir } = options;
  yield* makeLogDir(dir);
  const lock = yield* takeLock(dir);
  try {
    yield* removeStaleSpare(dir);
    return yield* replayAndRepair(io, options, lock);
  } catch (error) {
    yield* call('unlock', lock);
    throw error;
  }
}

/** A spare segment left by an earlier run holds no record; the writer prepares a fresh one. */
function* removeStaleSpare(dir: string): IoProgram<void> {
  const names = yield* attempt('list directory', dir, call('listDir', dir));
  if (!names.includes(SPARE_FILE_NAME)) return;
  const file = path.join(dir, SPARE_FILE_NAME);
  yield* attempt('remove stale spare segment', file, call('unlink', file));
}

function* takeLock(dir: string): IoProgram<LockToken> {
  const lockPath = path.join(dir, LOCK_FILE_NAME);
  try {
    return yield* call('lock', lockPath, LOCK_WAIT_MS);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EWOULDBLOCK' || code === 'EAGAIN') {
      throw new WalError(
        'WAL_ALREADY_OPEN',
        `the log in ${dir} is already open by another writer (in this or another process); close it first`,
        { file: lockPath, cause: error },
      );
    }
    throw toIoError(error, 'lock directory', lockPath);
  }
}

/** The log as one scan found it. */
export interface ReplayedLog<Out> {
  refs: SegmentRef[];
  scanned: ScannedSegment[];
  /** The last segment's scan; null when it held only an unfinished header (or there are no segments). */
  last: ScannedSegment | null;
  totals: ScanTotals;
  events: Out[];
}

/** Reads and checks every segment in order, decoding committed transactions above the fence. */
export function* replayLog<Out>(
  dir: string,
  scanOptions: ScanOptions,
  codec: Codec<unknown, Out>,
  onReplay: ReplayHandler<Out> | null,
): IoProgram<ReplayedLog<Out>> {
  const scanner = new LogScanner(scanOptions);
  const refs = yield* attempt('list directory', dir, listSegments(dir));
  const events: Out[] = [];
  const scanned: ScannedSegment[] = [];
  let last: ScannedSegment | null = null;
  // With onReplay, events live only until their callback settles, so every
  // segment is read into one reused buffer (less memory, no page faults).
  let scratch = null as Buffer | null;
  for (const [index, ref] of refs.entries()) {
    const bytes: Buffer = yield* attempt('read segment', ref.path, call('readFile', ref.path, scratch));
    if (onReplay !== null && bytes.buffer !== scratch?.buffer) scratch = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    const isLast = index === refs.length - 1;
    const segment = scanner.scan(ref, bytes, isLast);
    for (const tx of scanner.takeCommitted()) yield* deliver(tx, codec, onReplay, events);
    if (scratch !== null) scanner.detachOpenEvents();
    if (segment === null) continue;
    scanned.push(segment);
    if (isLast) last = segment;
  }
  return { refs, scanned, last, totals: scanner.finish(), events };
}

/** The recovery report of a replayed log; `repairs` lists what open did (or would do). */
export function recoveryReport(log: ReplayedLog<unknown>, repairs: string[]): Recovery {
  const { totals } = log;
  return {
    maxLsn: totals.maxLsn,
    tornTail: log.last?.tornTail ?? null,
    checkpointLsnObserved: totals.checkpointLsnObserved,
    transactions: totals.transactions,
    events: totals.events,
    abortedTransactions: totals.abortedTransactions,
    incompleteTransactions: totals.incompleteTransactions,
    segments: totals.segments,
    repairs,
  };
}

function* replayAndRepair<In, Out>(
  io: WalIo,
  options: NormalizedOptions<In, Out>,
  lock: LockToken,
): IoProgram<Recovered<Out>> {
  const fileConfig: SegmentFileConfig = {
    dir: options.dir,
    segmentBytes: options.segmentBytes,
    preallocation: options.preallocation,
    crc32: io.crc32,
  };
  const spans = new TxSpans();
  spans.settle(Number.MAX_SAFE_INTEGER); // everything read back is on disk already
  const log = yield* replayLog(
    options.dir,
    { checkpointLsn: options.checkpointLsn, crc32: io.crc32, spans },
    options.codec as Codec<unknown, Out>,
    options.onReplay,
  );
  const { last, totals } = log;
  const segments: Segment[] = log.scanned.map((scanned) => ({
    ...newSegment(options.dir, scanned.ref.id, scanned.baseLsn),
    lastLsn: scanned.lastLsn,
    sealed: scanned.sealed,
    created: true,
  }));
  const repairs: string[] = [];
  const lastRef = log.refs[log.refs.length - 1];
  if (lastRef === undefined) {
    segments.push(yield* createActive(fileConfig, 1, 1));
  } else if (last === null) {
    // Killed while creating this segment: a missing, zero or partial header and no record.
    yield* attempt('remove unfinished segment', lastRef.path, call('unlink', lastRef.path));
    segments.push(yield* createActive(fileConfig, lastRef.id, totals.nextLsn));
    repairs.push(`replaced ${path.basename(lastRef.path)}, whose header was never completed`);
  } else if (last.sealed) {
    // Killed during rotation after sealing, before the next segment existed.
    segments.push(yield* createActive(fileConfig, last.ref.id + 1, totals.nextLsn));
    repairs.push(`created segment ${last.ref.id + 1} after sealed ${path.basename(last.ref.path)}`);
  } else {
    const active = segments[segments.length - 1] as Segment;
    active.fd = yield* reopenActive(fileConfig, last);
    active.writtenEnd = last.dataEnd;
    active.stagedEnd = last.dataEnd;
  }
  spans.settle(totals.nextLsn - 1);
  return {
    lock,
    segments,
    nextLsn: totals.nextLsn,
    lastCheckpointSnapshot: totals.checkpointLsnObserved,
    spans,
    recovery: recoveryReport(log, repairs),
    events: log.events,
  };
}

function* createActive(config: SegmentFileConfig, id: number, baseLsn: number): IoProgram<Segment> {
  const fd = yield* createSegmentFile(config, id, baseLsn);
  return { ...newSegment(config.dir, id, baseLsn), fd, created: true };
}

/** Opens the last segment for appending: cut a torn tail, preallocate again, fsync. */
function* reopenActive(config: SegmentFileConfig, last: ScannedSegment): IoProgram<number> {
  const file = last.ref.path;
  const fd = yield* attempt('open segment', file, call('openSegment', file, false));
  try {
    if (last.tornTail !== null) {
      // Zero everything after the last good frame, so no stale byte is ever read as a frame.
      yield* attempt('cut torn tail', file, call('truncate', fd, last.dataEnd));
    }
    yield* prepareSegmentFile(config, fd, file);
  } catch (error) {
    yield* call('close', fd);
    throw error;
  }
  return fd;
}

/** Decodes one committed transaction and hands it to `onReplay` or the events list. */
function* deliver<In, Out>(
  tx: CommittedTx,
  codec: Codec<In, Out>,
  onReplay: ReplayHandler<Out> | null,
  events: Out[],
): IoProgram<void> {
  const decoded = new Array<Out>(tx.events.length);
  for (let i = 0; i < tx.events.length; i++) {
    const lsn = tx.eventLsns[i] as number;
    try {
      decoded[i] = codec.decode(tx.events[i] as Buffer, lsn);
    } catch (error) {
      throw decodeError(error, lsn);
    }
  }
  if (onReplay === null) {
    for (const event of decoded) events.push(event);
    return;
  }
  yield* settle(onReplay(decoded, tx.lsns));
}
