import { promises as fsp } from 'node:fs';
import fs from 'node:fs';
import type { AsyncIoOps, IoOps } from './types.js';

/**
 * Directory operations and reads, none on the append path; both
 * backends use node:fs for them.
 */

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

function fileSizeOf(fd: number): Promise<number> {
  return new Promise((resolve, reject) => fs.fstat(fd, (error, stats) => (error ? reject(error) : resolve(stats.size))));
}

type FileOps = 'makeDir' | 'listDir' | 'openRead' | 'fileSize' | 'read' | 'unlink' | 'rename';

export const fileOpsSync: Pick<IoOps, FileOps> = {
  makeDir: (dir) => void fs.mkdirSync(dir, { recursive: true }),
  listDir: (dir) => fs.readdirSync(dir),
  openRead: (path) => fs.openSync(path, 'r'),
  fileSize: (fd) => fs.fstatSync(fd).size,
  read: readAtSync,
  unlink: (path) => fs.unlinkSync(path),
  rename: (from, to) => fs.renameSync(from, to),
};

export const fileOpsAsync: Pick<AsyncIoOps, FileOps> = {
  makeDir: async (dir) => void (await fsp.mkdir(dir, { recursive: true })),
  listDir: (dir) => fsp.readdir(dir),
  openRead: (path) => openForRead(path),
  fileSize: (fd) => fileSizeOf(fd),
  read: readAt,
  unlink: (path) => fsp.unlink(path),
  rename: (from, to) => fsp.rename(from, to),
};
