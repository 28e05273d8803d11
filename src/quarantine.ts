import path from 'node:path';
import { toIoError } from './errors.js';
import { segmentFileName } from './format/segment-name.js';
import { call, type IoProgram } from './io/program.js';
import type { Fd } from './io/types.js';
import { attempt, cleanupAfterFailure, writeFully } from './segment-files.js';

/*
 * Open never destroys bytes it cuts: before a torn tail is cut, the range is
 * copied to a quarantine file next to the segments (docs/FORMAT.md,
 * "Quarantine files"), fsync'd, and its name made durable. The name can never
 * be a segment's, so no reader ever reads it, and nothing in segwal deletes it.
 */

/** `0000000003.wal.quarantine-4096`, then `…-4096.2`, … when a name is taken. */
export function quarantineName(segmentId: number, offset: number, attemptNo: number): string {
  const base = `${segmentFileName(segmentId)}.quarantine-${offset}`;
  return attemptNo === 1 ? base : `${base}.${attemptNo}`;
}

/** Names tried before giving up: a directory with this many copies of one cut is not left to guess. */
const MAX_NAME_ATTEMPTS = 1000;
const COPY_CHUNK_BYTES = 1024 * 1024;

/**
 * Copies bytes [from, to) of the open segment `source` into a new quarantine
 * file and makes it durable (data and name); returns its path.
 */
export function* quarantineRange(
  dir: string,
  segmentId: number,
  source: Fd,
  sourceFile: string,
  from: number,
  to: number,
): IoProgram<string> {
  const { fd, file } = yield* createExclusive(dir, segmentId, from);
  try {
    const chunk = Buffer.allocUnsafe(Math.min(COPY_CHUNK_BYTES, to - from));
    for (let at = from; at < to; ) {
      const wanted = Math.min(chunk.length, to - at);
      const got = yield* attempt('read torn tail', sourceFile, call('read', source, chunk, 0, wanted, at));
      if (got === 0) break; // the file is shorter than the scan saw: nothing more to keep
      yield* writeFully(fd, chunk.subarray(0, got), at - from, 'write quarantine file', file);
      at += got;
    }
    yield* attempt('fsync quarantine file', file, call('datasync', fd));
  } catch (error) {
    yield* cleanupAfterFailure(call('close', fd));
    throw error;
  }
  yield* attempt('close quarantine file', file, call('close', fd));
  yield* attempt('fsync directory', dir, call('syncDir', dir));
  return file;
}

function* createExclusive(dir: string, segmentId: number, offset: number): IoProgram<{ fd: Fd; file: string }> {
  for (let attemptNo = 1; ; attemptNo++) {
    const file = path.join(dir, quarantineName(segmentId, offset, attemptNo));
    try {
      return { fd: yield* call('openSegment', file, true), file };
    } catch (error) {
      const taken = (error as NodeJS.ErrnoException).code === 'EEXIST';
      if (!taken || attemptNo === MAX_NAME_ATTEMPTS) throw toIoError(error, 'create quarantine file', file);
    }
  }
}
