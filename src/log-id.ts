import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { WalError, describeLocation, toIoError } from './errors.js';
import { call, type IoProgram } from './io/program.js';
import type { Fd } from './io/types.js';
import { attempt, cleanupAfterFailure, writeFully } from './segment-files.js';

/*
 * A log's identity: a random 128-bit id (32 lowercase hex digits) made when
 * the log is created and kept across rotation and truncation, so that a
 * shipped or restored copy can tell "the same log" from "another log that
 * happens to have the same LSNs" (the role of Postgres's system identifier).
 * It lives in `.segwal.id` (docs/FORMAT.md), written atomically: a temporary
 * file, fsync'd, renamed over, the directory fsync'd. Readers take no lock to
 * read it.
 */

export const LOG_ID_FILE_NAME = '.segwal.id';
const LOG_ID_TEMP_NAME = '.segwal.id.tmp';
const LOG_ID_PATTERN = /^[0-9a-f]{32}$/;

export function isLogId(value: unknown): value is string {
  return typeof value === 'string' && LOG_ID_PATTERN.test(value);
}

export function newLogId(): string {
  return randomBytes(16).toString('hex');
}

/** The id file's bytes: one JSON line, so a person can read it and a later version add fields. */
function encodeLogIdFile(logId: string): Buffer {
  return Buffer.from(`${JSON.stringify({ logId })}\n`);
}

const MAX_ID_FILE_BYTES = 4096;

/** The log's id, or null when it has none yet (a log written before ids existed, or no log at all). */
export function* readLogId(dir: string): IoProgram<string | null> {
  const file = path.join(dir, LOG_ID_FILE_NAME);
  let fd: Fd;
  try {
    fd = yield* call('openRead', file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw toIoError(error, 'open log id', file);
  }
  const bytes = Buffer.alloc(MAX_ID_FILE_BYTES);
  let got: number;
  try {
    got = yield* attempt('read log id', file, call('read', fd, bytes, 0, MAX_ID_FILE_BYTES, 0));
  } catch (error) {
    yield* cleanupAfterFailure(call('close', fd));
    throw error;
  }
  yield* attempt('close log id', file, call('close', fd));
  let logId: unknown;
  try {
    logId = (JSON.parse(bytes.subarray(0, got).toString('utf8')) as { logId?: unknown }).logId;
  } catch {
    logId = undefined;
  }
  if (!isLogId(logId)) {
    throw new WalError(
      'WAL_MALFORMED',
      `the log's identity file does not hold a log id (32 hex digits); it was damaged or edited. Restore it from a copy of this log, or remove it to give the log a new identity (a replica or shipper will then treat it as a different log)${describeLocation({ file })}`,
      { file },
    );
  }
  return logId;
}

/** Writes the id file atomically (under the lock): temp file, fsync, rename, directory fsync. */
export function* writeLogId(dir: string, logId: string): IoProgram<void> {
  const temp = path.join(dir, LOG_ID_TEMP_NAME);
  const file = path.join(dir, LOG_ID_FILE_NAME);
  // A temp file left by a crash holds nothing anyone relies on.
  try {
    yield* call('unlink', temp);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw toIoError(error, 'remove stale log id temp file', temp);
  }
  const fd = yield* attempt('create log id', temp, call('openSegment', temp, true));
  try {
    yield* writeFully(fd, encodeLogIdFile(logId), 0, 'write log id', temp);
    yield* attempt('fsync log id', temp, call('datasync', fd));
  } catch (error) {
    yield* cleanupAfterFailure(call('close', fd));
    throw error;
  }
  yield* attempt('close log id', temp, call('close', fd));
  yield* attempt('rename log id', file, call('rename', temp, file));
  yield* attempt('fsync directory', dir, call('syncDir', dir));
}
