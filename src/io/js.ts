import fs, { promises as fsp } from 'node:fs';
import { promisify } from 'node:util';
import { referenceCrc32 } from '../format/crc.js';
import { fillFrameCrcs } from '../format/frame.js';
import { lockDir, lockDirSync, unlockDir } from './dir-lock.js';
import { fileOpsAsync, fileOpsSync } from './fs-common.js';
import type { AsyncIoOps, Fd, IoOps, WalIo } from './types.js';

/*
 * The pure node:fs backend. Async calls go through libuv's thread pool (the
 * callback forms of fs), so they never block the event loop on the disk.
 * node:fs has no fallocate, so `allocate` always writes zeros (its zeroFill
 * flag changes nothing here): the same bytes the native backend's fallocate
 * leaves, hence byte-identical files. Nor sync_file_range: `startWriteback`,
 * a hint, does nothing.
 */

function writeAt(fd: Fd, data: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.write(fd, data, offset, length, position, (error, written) => (error ? reject(error) : resolve(written)));
  });
}
const fdatasync = promisify(fs.fdatasync);
const ftruncate = promisify(fs.ftruncate);
const fstat = promisify(fs.fstat);
const close = promisify(fs.close);
const open = promisify(fs.open);

/** As small as the native backend's, for the reason given there (native/segment_file.cc, Allocate). */
const ZERO_CHUNK_BYTES = 16 * 1024;
let zeroChunk: Buffer | undefined;
function zeros(): Buffer {
  zeroChunk ??= Buffer.alloc(ZERO_CHUNK_BYTES);
  return zeroChunk;
}

function writeAllSync(fd: Fd, data: Uint8Array, position: number): number {
  let done = 0;
  while (done < data.length) {
    const wrote = fs.writeSync(fd, data, done, data.length - done, position + done);
    if (wrote === 0) break;
    done += wrote;
  }
  return done;
}

async function writeAll(fd: Fd, data: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < data.length) {
    const wrote = await writeAt(fd, data, done, data.length - done, position + done);
    if (wrote === 0) break;
    done += wrote;
  }
  return done;
}

function appendFramesSync(fd: Fd, frames: Uint8Array, position: number, sync: boolean): number {
  fillFrameCrcs(frames, referenceCrc32);
  const wrote = writeAllSync(fd, frames, position);
  if (sync && wrote === frames.length) fs.fdatasyncSync(fd);
  return wrote;
}

async function appendFrames(fd: Fd, frames: Uint8Array, position: number, sync: boolean): Promise<number> {
  fillFrameCrcs(frames, referenceCrc32);
  const wrote = await writeAll(fd, frames, position);
  if (sync && wrote === frames.length) await fdatasync(fd);
  return wrote;
}

function allocateSync(fd: Fd, size: number): void {
  for (let at = fs.fstatSync(fd).size; at < size; ) {
    const wrote = writeAllSync(fd, zeros().subarray(0, Math.min(ZERO_CHUNK_BYTES, size - at)), at);
    if (wrote === 0) throw shortAllocation();
    at += wrote;
  }
}

/**
 * A MiB of small writes per wait, all in flight at once: one by one, each
 * waited for a turn of the event loop, and under a flood of commits the
 * spare was not ready by the next rotation (W3 js, docs/BENCHMARKS.md).
 */
const ZERO_WRITES_IN_FLIGHT = 64;

async function allocate(fd: Fd, size: number): Promise<void> {
  for (let at = (await fstat(fd)).size; at < size; ) {
    const writes: Promise<boolean>[] = [];
    for (; writes.length < ZERO_WRITES_IN_FLIGHT && at < size; at += ZERO_CHUNK_BYTES) {
      const chunk = zeros().subarray(0, Math.min(ZERO_CHUNK_BYTES, size - at));
      writes.push(writeAll(fd, chunk, at).then((wrote) => wrote === chunk.length));
    }
    if ((await Promise.all(writes)).includes(false)) throw shortAllocation();
  }
}

function shortAllocation(): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error('ENOSPC: the device accepted no more bytes while preallocating');
  error.code = 'ENOSPC';
  error.syscall = 'write';
  return error;
}

function syncDirSync(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fsp.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** 'wx+' is O_RDWR|O_CREAT|O_EXCL; 'r+' is O_RDWR on an existing file. */
const openFlags = (create: boolean) => (create ? 'wx+' : 'r+');

const sync: IoOps = {
  lock: lockDirSync,
  unlock: unlockDir,
  openSegment: (path, create) => fs.openSync(path, openFlags(create)),
  write: writeAllSync,
  appendFrames: appendFramesSync,
  datasync: (fd) => fs.fdatasyncSync(fd),
  startWriteback: () => undefined,
  allocate: allocateSync,
  truncate: (fd, size) => fs.ftruncateSync(fd, size),
  close: (fd) => fs.closeSync(fd),
  syncDir: syncDirSync,
  ...fileOpsSync,
};

const async: AsyncIoOps = {
  lock: lockDir,
  unlock: async (token) => unlockDir(token),
  openSegment: (path, create) => open(path, openFlags(create)),
  write: writeAll,
  appendFrames,
  datasync: (fd) => fdatasync(fd),
  startWriteback: async () => undefined,
  allocate,
  truncate: (fd, size) => ftruncate(fd, size),
  close: (fd) => close(fd),
  syncDir,
  ...fileOpsAsync,
};

export const jsIo: WalIo = { name: 'js', sync, async, crc32: referenceCrc32 };
