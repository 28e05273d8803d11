import path from 'node:path';
import { WalError, describeLocation, toIoError } from './errors.js';
import { LOCK_FILE_NAME, MAX_LSN } from './format/constants.js';
import { encodeSegmentHeader } from './format/header.js';
import { call, type IoProgram } from './io/program.js';
import type { LockToken, WalIo } from './io/types.js';
import { makeLogDir } from './log-dir.js';
import { LOCK_WAIT_MS, type NormalizedOptions } from './options.js';
import type { ScannedSegment } from './read/log-validator.js';
import { recoveryReport, replayLog, type ReplayedLog } from './read/replay-log.js';
import { LOG_ID_FILE_NAME, newLogId, readLogId, writeLogId } from './log-id.js';
import { quarantineRange } from './quarantine.js';
import {
  SPARE_FILE_NAME,
  attempt,
  cleanupAfterFailure,
  createSegmentFile,
  prepareSegmentFile,
  writeFully,
  type SegmentFileConfig,
} from './segment-files.js';
import { TxSpans } from './tx-spans.js';
import type { Codec, Recovery, TornTail } from './types.js';
import { openSegment, sealedSegment, type Segment } from './segment.js';

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

/** docs/DURABILITY.md, "Open and recovery": create the directory, take the lock, replay, repair the tail. */
export function* recoverProgram<In, Out>(io: WalIo, options: NormalizedOptions<In, Out>): IoProgram<Recovered<Out>> {
  const { dir } = options;
  yield* makeLogDir(dir);
  const lock = yield* takeLock(dir);
  try {
    yield* removeStaleSpare(dir);
    return yield* replayAndRepair(io, options, lock);
  } catch (error) {
    yield* cleanupAfterFailure(call('unlock', lock));
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
    replica: options.replica,
  };
  const existingId = yield* readLogId(options.dir);
  if (options.logId !== null && existingId !== null && existingId !== options.logId) {
    throw new WalError(
      'WAL_INVALID_OPTIONS',
      `invalid options: option \`logId\`: the log in ${options.dir} is log ${existingId}, not ${options.logId}`,
      { file: path.join(options.dir, LOG_ID_FILE_NAME) },
    );
  }
  const spans = new TxSpans();
  spans.forgetDurablyEnded(Number.MAX_SAFE_INTEGER); // everything read back is on disk already
  const log = yield* replayLog(options.dir, {
    fence: options.checkpointLsn,
    checksums: io,
    codec: options.codec as Codec<unknown, Out>,
    onReplay: options.onReplay,
    observer: spans,
  });
  const { last, totals } = log;
  if (last?.tornTail !== null && last?.tornTail !== undefined && options.tailDamage === 'refuse') refuseTailDamage(last);
  const nextLsn = firstLsnAfter(log);
  if (options.replica) refusePrimary(log, options.dir);
  // Every segment but an unsealed last one is never written again.
  const segments: Segment[] = log.scanned
    .filter((scanned) => scanned !== last || scanned.sealed)
    .map((scanned) => sealedSegment(options.dir, scanned.ref.id, scanned.baseLsn, scanned.lastLsn, scanned.replica, scanned.formatVersion));
  const repairs: string[] = [];
  // A new log gets its identity before its first segment exists; a log from
  // before identities existed (or whose id file was removed) gets one now.
  const logId = existingId ?? options.logId ?? newLogId();
  if (existingId === null) yield* writeLogId(options.dir, logId);
  let tornTail: TornTail | null = null;
  const lastRef = log.refs[log.refs.length - 1];
  if (lastRef === undefined) {
    segments.push(yield* createActive(fileConfig, 1, nextLsn));
  } else if (last === null) {
    // Killed while creating this segment: a missing, zero or partial header and no record.
    yield* attempt('remove unfinished segment', lastRef.path, call('unlink', lastRef.path));
    segments.push(yield* createActive(fileConfig, lastRef.id, nextLsn));
    repairs.push(`replaced ${path.basename(lastRef.path)}, whose header was never completed`);
  } else if (last.sealed) {
    // Killed during rotation after sealing, before the next segment existed.
    segments.push(yield* createActive(fileConfig, last.ref.id + 1, nextLsn));
    repairs.push(`created segment ${last.ref.id + 1} after sealed ${path.basename(last.ref.path)}`);
  } else {
    const reopened = yield* reopenActive(fileConfig, last, nextLsn);
    tornTail = reopened.tornTail;
    const empty = last.records === 0;
    if (empty && nextLsn !== last.baseLsn) repairs.push(`started the empty log at LSN ${nextLsn}, above checkpointLsn ${log.fence}`);
    const baseLsn = empty ? nextLsn : last.baseLsn;
    const found = { lastLsn: empty ? nextLsn - 1 : last.lastLsn, dataEnd: last.dataEnd, formatVersion: last.formatVersion };
    segments.push(openSegment(options.dir, last.ref.id, baseLsn, reopened.fd, last.replica, found));
  }
  spans.forgetDurablyEnded(nextLsn - 1);
  return {
    lock,
    segments,
    nextLsn,
    lastCheckpointSnapshot: totals.checkpointLsnObserved,
    spans,
    recovery: recoveryReport(log, { logId, repairs, tornTail }),
    events: log.events,
  };
}

/**
 * The LSN the next record takes. A fence beyond the end of the log would hide
 * every later commit from a reopen with the same fence (docs/DURABILITY.md):
 * an empty log starts above it (a snapshot restored onto a new directory), a
 * log with records refuses it.
 */
function firstLsnAfter(log: ReplayedLog<unknown>): number {
  const { fence, totals } = log;
  if (fence < totals.nextLsn) return totals.nextLsn;
  if (totals.maxLsn === 0) {
    if (fence >= MAX_LSN) {
      throw new WalError('WAL_LSN_EXHAUSTED', `checkpointLsn ${fence} leaves no LSN above it below 2^53 for a new log`);
    }
    return fence + 1;
  }
  throw new WalError(
    'WAL_INVALID_OPTIONS',
    `invalid options: option \`checkpointLsn\`: ${fence} is beyond the end of the log (its last LSN is ${totals.maxLsn}); ` +
      `the next commit would take LSN ${totals.nextLsn} and a reopen with the same fence would not replay it. ` +
      'Pass the fence of the snapshot this log continues, or restore the snapshot into an empty directory',
  );
}

/**
 * A replica's records may skip LSNs only in segments flagged as a replica's,
 * so a replica cannot go on in a writer's segment, even one with no record
 * yet: it would write what the next open refuses as malformed. An unfinished
 * last segment says nothing; the one before it does.
 */
function refusePrimary(log: ReplayedLog<unknown>, dir: string): void {
  const newest = log.scanned.at(-1);
  if (newest === undefined || newest.replica) return;
  const file = newest.ref.path;
  const empty = log.totals.maxLsn === 0 ? ', though it holds no record yet' : '';
  throw new WalError(
    'WAL_INVALID_OPTIONS',
    `invalid options: option \`replica\`: the log in ${dir} is not a replica (its last segment is a writer's${empty}): a replica needs a directory of its own; follow into an empty directory${describeLocation({ file })}`,
    { file },
  );
}

/** `tailDamage: 'refuse'`: damage followed by valid frames is not cut. */
function refuseTailDamage(last: ScannedSegment): void {
  const tail = last.tornTail as TornTail;
  if (tail.validFramesAfter === 0) return;
  const where = { file: last.ref.path, offset: tail.offset, lsn: last.lastLsn + 1 };
  throw new WalError(
    'WAL_MALFORMED',
    `damage in the last segment with valid frames after it, not cut (tailDamage: 'refuse'): ${tail.cause}${describeLocation(where)}`,
    where,
  );
}

function* createActive(config: SegmentFileConfig, id: number, baseLsn: number): IoProgram<Segment> {
  return openSegment(config.dir, id, baseLsn, yield* createSegmentFile(config, id, baseLsn), config.replica);
}

/**
 * Opens the last segment for appending: a torn tail is copied to a quarantine
 * file and cut, an empty segment is given `baseLsn` when it differs, then the
 * file is preallocated again and fsync'd.
 */
function* reopenActive(
  config: SegmentFileConfig,
  last: ScannedSegment,
  baseLsn: number,
): IoProgram<{ fd: number; tornTail: TornTail | null }> {
  const file = last.ref.path;
  const fd = yield* attempt('open segment', file, call('openSegment', file, false));
  let tornTail = last.tornTail;
  try {
    if (tornTail !== null) {
      const { offset, discardedBytes } = tornTail;
      const quarantineFile = yield* quarantineRange(config.dir, last.ref.id, fd, file, offset, offset + discardedBytes);
      tornTail = { ...tornTail, quarantineFile };
      // Zero everything after the last good frame, so no stale byte is ever read as a frame.
      yield* attempt('cut torn tail', file, call('truncate', fd, last.dataEnd));
    }
    if (baseLsn !== last.baseLsn && last.records === 0) {
      yield* writeFully(
        fd,
        encodeSegmentHeader({ baseLsn, sealed: false, replica: last.replica, formatVersion: last.formatVersion }, config.crc32),
        0,
        'write segment header',
        file,
      );
    }
    yield* prepareSegmentFile(config, fd, file);
  } catch (error) {
    yield* cleanupAfterFailure(call('close', fd));
    throw error;
  }
  return { fd, tornTail };
}
