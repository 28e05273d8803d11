import { promises as fsp } from 'node:fs';
import fs from 'node:fs';
import type { AsyncIoOps, IoOps } from './types.js';

/**
 * Directory and whole-file operations that are not on the append path; both
 * backends use node:fs for them.
 */

/** `reuse` when the file fits in it, else a new unpooled buffer of the file's size. */
function readTarget(size: number, reuse: Buffer | null | undefined): Buffer {
  return reuse !== undefined && reuse !== null && reuse.length >= size ? reuse : Buffer.allocUnsafeSlow(size);
}

function readWholeSync(path: string, reuse?: Buffer | null): Buffer {
  const fd = fs.openSync(path, 'r');
  try {
    const target = readTarget(fs.fstatSync(fd).size, reuse);
    const size = Math.min(target.length, fs.fstatSync(fd).size);
    let done = 0;
    while (done < size) {
      const read = fs.readSync(fd, target, done, size - done, done);
      if (read === 0) break;
      done += read;
    }
    return target.subarray(0, done);
  } finally {
    fs.closeSync(fd);
  }
}

async function readWhole(path: string, reuse?: Buffer | null): Promise<Buffer> {
  const handle = await fsp.open(path, 'r');
  try {
    const size = (await handle.stat()).size;
    const target = readTarget(size, reuse);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await handle.read(target, done, size - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return target.subarray(0, done);
  } finally {
    await handle.close();
  }
}
function readAtSync(fd: number, target: Uint8Array, offset: number, length: number, position: number): number {
  let done = 0;
  while (done < length) {
    const read = fs.readSync(fd, target, offset + done, length - done, position + done);
    if (read === 0) break;
    done += read;
  }
  return done;
}

function readAtOnce(fd: number, target: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, target, offset, length, position, (error, bytesRead) => (error ? reject(error) : resolve(bytesRead)));
  });
}

async function readAt(fd: number, target: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const read = await readAtOnce(fd, target, offset + done, length - done, position + done);
    if (read === 0) break;
    done += read;
  }
  return done;
}

function openForRead(path: string): Promise<number> {
  return new Promise((resolve, reject) => fs.open(path, 'r', (error, fd) => (error ? reject(error) : resolve(fd))));
}

type FileOps = 'makeDir' | 'listDir' | 'readFile' | 'openRead' | 'read' | 'unlink' | 'rename';

export const fileOpsSync: Pick<IoOps, FileOps> = {
  makeDir: (dir) => void fs.mkdirSync(dir, { recursive: true }),
  listDir: (dir) => fs.readdirSync(dir),
  readFile: readWholeSync,
  openRead: (path) => fs.openSync(path, 'r'),
  read: readAtSync,
  unlink: (path) => fs.unlinkSync(path),
  rename: (from, to) => fs.renameSync(from, to),
};

export const fileOpsAsync: Pick<AsyncIoOps, FileOps> = {
  makeDir: async (dir) => void (await fsp.mkdir(dir, { recursive: true })),
  listDir: (dir) => fsp.readdir(dir),
  readFile: readWhole,
  openRead: (path) => openForRead(path),
  read: readAt,
  unlink: (path) => fsp.unlink(path),
  rename: (from, to) => fsp.rename(from, to),
};
