import { loadAddon, type NativeAddon } from './addon.js';
import { lockDir, lockDirSync, unlockDir } from './dir-lock.js';
import { fileOpsAsync, fileOpsSync } from './fs-common.js';
import type { AsyncIoOps, IoOps, WalIo } from './types.js';

/*
 * The addon backend: the append path (open, pwrite, fdatasync, fallocate,
 * ftruncate, close, directory fsync) and CRC-32 run in C++; the `async` forms
 * run on libuv's thread pool, and `appendFrames` on the addon's writer thread. Directory listing and whole-file reads are not
 * on the hot path and use node:fs like the js backend.
 */

function syncOps(addon: NativeAddon): IoOps {
  return {
    lock: lockDirSync,
    unlock: unlockDir,
    openSegment: addon.openSegment,
    write: addon.write,
    appendFrames: addon.appendFrames,
    datasync: addon.datasync,
    startWriteback: addon.startWriteback,
    allocate: addon.allocate,
    truncate: addon.truncate,
    close: addon.close,
    syncDir: addon.syncDir,
    ...fileOpsSync,
  };
}

function asyncOps(addon: NativeAddon): AsyncIoOps {
  return {
    lock: lockDir,
    unlock: async (token) => unlockDir(token),
    openSegment: addon.openSegmentAsync,
    write: addon.writeAsync,
    appendFrames: addon.appendFramesAsync,
    datasync: addon.datasyncAsync,
    startWriteback: addon.startWritebackAsync,
    allocate: addon.allocateAsync,
    truncate: addon.truncateAsync,
    close: addon.closeAsync,
    syncDir: addon.syncDirAsync,
    ...fileOpsAsync,
  };
}

let shared: WalIo | undefined;

/** The native backend; throws a WalError explaining `io: 'js'` when the addon cannot load. */
export function createNativeIo(): WalIo {
  if (shared === undefined) {
    const addon = loadAddon();
    shared = {
      name: 'native',
      sync: syncOps(addon),
      async: asyncOps(addon),
      crc32: (data, initial) => addon.crc32(data, initial ?? 0),
      checkFrameCrcs: (frames) => addon.checkFrameCrcs(frames),
    };
  }
  return shared;
}
