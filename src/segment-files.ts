import path from 'node:path';
import { WalError, toIoError } from './errors.js';
import { FORMAT_VERSION } from './format/constants.js';
import type { Crc32 } from './format/crc.js';
import { encodeSegmentHeader } from './format/header.js';
import { segmentFileName } from './format/segment-name.js';
import { call, type IoProgram } from './io/program.js';
import type { Fd } from './io/types.js';
import type { SyncMode } from './types.js';

/**
 * How a new segment's space is set aside. 'zeros': reserved (fallocate) and
 * zero-filled, so the fdatasync after a durable write commits data only, with
 * no extent conversion; in group mode W3 also writes ~1.6× faster than into
 * blocks only reserved. 'reserve': reserved only, no zeros to write; the
 * conversion is paid at the next fsync, which sync 'none' rarely makes, and
 * there its blocking writes cost the same either way (docs/BENCHMARKS.md,
 * "The goals not reached"). 'none': appends grow the file.
 */
export type Preallocation = 'none' | 'reserve' | 'zeros';

/** Zero-fill where fsyncs are frequent; sync 'none' fsyncs only at rotation, checkpoint, `sync()` and close. */
export function preallocationFor(preallocate: boolean, syncMode: SyncMode): Preallocation {
  if (!preallocate) return 'none';
  return syncMode === 'none' ? 'reserve' : 'zeros';
}

/** What creating a segment file needs to know. */
export interface SegmentFileConfig {
  dir: string;
  segmentBytes: number;
  preallocation: Preallocation;
  crc32: Crc32;
  /** New segments belong to a replica (their header says so). */
  replica: boolean;
}

export function segmentPath(dir: string, id: number): string {
  return path.join(dir, segmentFileName(id));
}

/**
 * The next segment, prepared ahead of rotation: preallocated and fsync'd, but
 * with no header and under a name that is not a segment's, so a crash leaves
 * nothing replay would read. Ours alone; open removes a stale one.
 */
export const SPARE_FILE_NAME = '.segwal.next';

export function sparePath(dir: string): string {
  return path.join(dir, SPARE_FILE_NAME);
}

/** Runs `program`, reporting any failure as WAL_IO naming `action` and `file`. */
export function* attempt<T>(action: string, file: string, program: IoProgram<T>): IoProgram<T> {
  try {
    return yield* program;
  } catch (error) {
    throw toIoError(error, action, file);
  }
}

/** Runs a cleanup after a failure that is the one to report: a cleanup failing too (a close, an unlock) must not hide it. */
export function* cleanupAfterFailure(program: IoProgram<unknown>): IoProgram<void> {
  try {
    yield* program;
  } catch {
    // the first failure is reported; this one would hide it
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
  if (config.preallocation !== 'none') {
    yield* attempt('preallocate segment', file, call('allocate', fd, config.segmentBytes, config.preallocation === 'zeros'));
  }
  yield* attempt('fsync segment', file, call('datasync', fd));
}

/**
 * Turns the spare into segment `id`: header written and fsync'd first, then
 * the rename (atomic) and a directory fsync. Ends byte for byte like a file
 * from `createSegmentFile`.
 */
export function* adoptSpareFile(config: SegmentFileConfig, fd: Fd, id: number, baseLsn: number): IoProgram<Fd> {
  const file = segmentPath(config.dir, id);
  const header = encodeSegmentHeader({ baseLsn, sealed: false, replica: config.replica, formatVersion: FORMAT_VERSION }, config.crc32);
  yield* writeFully(fd, header, 0, 'write segment header', file);
  yield* attempt('fsync segment', file, call('datasync', fd));
  yield* attempt('rename spare segment', file, call('rename', sparePath(config.dir), file));
  yield* attempt('fsync directory', config.dir, call('syncDir', config.dir));
  return fd;
}

/**
 * Creates segment `id` exclusively with its header, preallocated and fsync'd,
 * then fsyncs the directory so the new name survives a crash.
 */
export function* createSegmentFile(config: SegmentFileConfig, id: number, baseLsn: number): IoProgram<Fd> {
  const file = segmentPath(config.dir, id);
  const fd = yield* attempt('create segment', file, call('openSegment', file, true));
  const header = encodeSegmentHeader({ baseLsn, sealed: false, replica: config.replica, formatVersion: FORMAT_VERSION }, config.crc32);
  yield* writeFully(fd, header, 0, 'write segment header', file);
  yield* prepareSegmentFile(config, fd, file);
  yield* attempt('fsync directory', config.dir, call('syncDir', config.dir));
  return fd;
}
