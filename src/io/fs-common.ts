import { promises as fsp } from 'node:fs';
import fs from 'node:fs';
import type { AsyncIoOps, IoOps } from './types.js';

/**
 * Directory and whole-file operations that are not on the append path; both
 * backends use node:fs for them.
 */
export const fileOpsSync: Pick<IoOps, 'makeDir' | 'listDir' | 'readFile' | 'unlink' | 'rename'> = {
  makeDir: (dir) => void fs.mkdirSync(dir, { recursive: true }),
  listDir: (dir) => fs.readdirSync(dir),
  readFile: (path) => fs.readFileSync(path),
  unlink: (path) => fs.unlinkSync(path),
  rename: (from, to) => fs.renameSync(from, to),
};

export const fileOpsAsync: Pick<AsyncIoOps, 'makeDir' | 'listDir' | 'readFile' | 'unlink' | 'rename'> = {
  makeDir: async (dir) => void (await fsp.mkdir(dir, { recursive: true })),
  listDir: (dir) => fsp.readdir(dir),
  readFile: (path) => fsp.readFile(path),
  unlink: (path) => fsp.unlink(path),
  rename: (from, to) => fsp.rename(from, to),
};
