import path from 'node:path';
import { WalError, toIoError } from './errors.js';
import type { Crc32 } from './format/crc.js';
import { encodeSegmentHeader } from './format/header.js';
import { segmentFileName } from './format/segment-name.js';
import { call, type IoProgram } from './io/program.js';
import type { Fd } from './io/types.js';

/** What creating a segment file needs to know. */
export interface SegmentFileConfig {
  dir: string;
  segmentBytes: number;
  preallocate: boolean;
  crc32: Crc32;
}

export function segmentPath(dir: string, id: number): string {
  return path.join(dir, segmentFileName(id));
}

/** Runs `program`, reporting any failure as WAL_IO naming `action` and `file`. */
export function* attempt<T>(action: string, file: string, program: IoProgram<T>): IoProgram<T> {
  try {
    return yield* program;
  } catch (error) {
    throw toIoError(error, action, file);
  }
}

/** Writes all of `bytes` at `position`; a short write is a failure (the Wal poisons, never retries). */
export function* writeFully(fd: Fd, bytes: Uint8Array, position: number, action: string, file: string): IoProgram<void> {
  const wrote = yield* attempt(action, file, call('write', fd, bytes, position));
  if (wrote !== bytes.length) throw shortWrite(wrote, bytes.length, position, file, action);
}

/** The device took only part of a write without an error: the Wal poisons, it never retries. */
export function shortWrite(wrote: number, wanted: number, position: number, file: string, action = 'write'): WalError {
  return new WalError('WAL_IO', `${action} failed: short write, ${wrote} of ${wanted} bytes at offset ${position} of ${file}`, {
    file,
    offset: position + wrote,
    syscall: 'write',
  });
}

/** Preallocates (if configured) to the segment size and fsyncs. */
export function* prepareSegmentFile(config: SegmentFileConfig, fd: Fd, file: string): IoProgram<void> {
  if (config.preallocate) yield* attempt('preallocate segment', file, call('allocate', fd, config.segmentBytes));
  yield* attempt('fsync segment', file, call('datasync', fd));
}

/**
 * Creates segment `id` exclusively with its header, preallocated and fsync'd,
 * then fsyncs the directory so the new name survives a crash.
 */
export function* createSegmentFile(config: SegmentFileConfig, id: number, baseLsn: number): IoProgram<Fd> {
  const file = segmentPath(config.dir, id);
  const fd = yield* attempt('create segment', file, call('openSegment', file, true));
  const header = encodeSegmentHeader({ baseLsn, sealed: false }, config.crc32);
  yield* writeFully(fd, header, 0, 'write segment header', file);
  yield* prepareSegmentFile(config, fd, file);
  yield* attempt('fsync directory', config.dir, call('syncDir', config.dir));
  return fd;
}
