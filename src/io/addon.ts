import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { WalError } from '../errors.js';

/**
 * The C++ addon's surface (native/addon.cc). Blocking calls run on the calling
 * thread; `*Async` calls run on libuv's thread pool and settle a promise, but
 * for `appendFramesAsync`, which runs on the addon's writer thread when it is free.
 * Failures throw/reject an Error with `errno` (positive) and `syscall`.
 */
export interface NativeAddon {
  /** Gives the addon Node's errno names (name → number) for the `code` of its errors; called once, at load. */
  setErrnoNames(names: Record<string, number>): void;
  crc32(data: Uint8Array, initial: number): number;
  /** The bytes of the leading frames of `frames` whose CRC trailers hold (native/crc32.h CheckFrameCrcs). */
  checkFrameCrcs(frames: Uint8Array): number;
  /** flock(LOCK_EX|LOCK_NB) on `path` (created if missing); returns the held fd. */
  tryLock(path: string): number;
  /** Releases the flock and closes the fd. */
  unlock(fd: number): void;
  openSegment(path: string, create: boolean): number;
  openSegmentAsync(path: string, create: boolean): Promise<number>;
  write(fd: number, data: Uint8Array, position: number): number;
  writeAsync(fd: number, data: Uint8Array, position: number): Promise<number>;
  appendFrames(fd: number, frames: Uint8Array, position: number, sync: boolean): number;
  appendFramesAsync(fd: number, frames: Uint8Array, position: number, sync: boolean): Promise<number>;
  datasync(fd: number): void;
  datasyncAsync(fd: number): Promise<void>;
  startWriteback(fd: number, offset: number, length: number): void;
  startWritebackAsync(fd: number, offset: number, length: number): Promise<void>;
  allocate(fd: number, size: number, zeroFill: boolean): void;
  allocateAsync(fd: number, size: number, zeroFill: boolean): Promise<void>;
  truncate(fd: number, size: number): void;
  truncateAsync(fd: number, size: number): Promise<void>;
  close(fd: number): void;
  closeAsync(fd: number): Promise<void>;
  syncDir(path: string): void;
  syncDirAsync(path: string): Promise<void>;
}

/**
 * Where the addon is looked for, in order (README, "Install"): a build from source on this machine
 * (by the install script, or `npm install` in this repository), then the binary prebuilt for this
 * platform that the package ships (scripts/addon-build.mjs names the same file).
 */
const SEARCH_PATH: string[][] = [
  ['module_root', 'build', 'Release', 'bindings'],
  ['module_root', 'prebuilds', `${process.platform}-${process.arch}`, 'bindings'],
];

let loaded: { addon: NativeAddon } | { error: unknown } | undefined;

/** The addon, or null when it was not built or cannot load on this machine. */
export function tryLoadAddon(): NativeAddon | null {
  if (loaded === undefined) {
    try {
      const require = createRequire(import.meta.url);
      const bindings = require('bindings') as typeof import('bindings');
      const addon = bindings({
        bindings: 'segwal_native',
        module_root: fileURLToPath(new URL('../..', import.meta.url)),
        try: SEARCH_PATH,
      }) as NativeAddon;
      addon.setErrnoNames(osConstants.errno);
      loaded = { addon };
    } catch (error) {
      loaded = { error };
    }
  }
  return 'addon' in loaded ? loaded.addon : null;
}

/** The addon, or a WalError that tells the user how to run without it, or how to get it. */
export function loadAddon(): NativeAddon {
  const addon = tryLoadAddon();
  if (addon !== null) return addon;
  const cause = loaded !== undefined && 'error' in loaded ? loaded.error : undefined;
  throw new WalError(
    'WAL_IO',
    "segwal's native addon could not be loaded: the package ships one prebuilt for linux-x64 (glibc), and " +
      'elsewhere the install builds it from source, which needs python3, make and a C++17 compiler. ' +
      "Open the log with `io: 'js'` to use the pure node:fs backend, which writes the same files, " +
      'or install that toolchain and run `npm rebuild segwal`. The cause says what was tried.',
    { cause },
  );
}
