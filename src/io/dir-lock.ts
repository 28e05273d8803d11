import fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import { tryLoadAddon } from './addon.js';
import type { LockToken } from './types.js';

/*
 * The directory lock, shared by both backends.
 *
 * With the addon loadable (the normal case, whichever `io` is chosen), the lock
 * is flock(LOCK_EX|LOCK_NB) on `.segwal.lock`: the kernel releases it when the
 * process dies, and a second open in the same process conflicts too, because
 * flock locks belong to the open file description.
 *
 * Without the addon (io: 'js' on a machine where it did not build), node:fs has
 * no flock, so the lock is `.segwal.lock.pid`, created exclusively and holding
 * the owner's pid; a file whose pid is no longer alive is taken over. That
 * excludes every other segwal writer on the same machine that also runs without
 * the addon; the two mechanisms do not see each other, which is why one
 * installation always uses the same one.
 */

const RETRY_STEP_MS = 10;
const held = new Map<LockToken, () => void>();
let nextToken = 1;

/** One attempt: a release function, or null when another holder has the lock. */
type LockAttempt = (lockPath: string) => (() => void) | null;

function attemptLock(lockPath: string): (() => void) | null {
  const addon = tryLoadAddon();
  return addon === null ? attemptPidLock(lockPath) : attemptFlock(addon.tryLock, addon.unlock, lockPath);
}

function attemptFlock(tryLock: (path: string) => number, unlock: (fd: number) => void, lockPath: string) {
  try {
    const fd = tryLock(lockPath);
    return () => unlock(fd);
  } catch (error) {
    if (isContended(error)) return null;
    throw error;
  }
}

function attemptPidLock(lockPath: string): (() => void) | null {
  const pidPath = `${lockPath}.pid`;
  fs.closeSync(fs.openSync(lockPath, 'a'));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(pidPath, 'wx');
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      return () => fs.rmSync(pidPath, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (isAlive(readPid(pidPath))) return null;
    // The owner died without releasing: move its file aside (atomic, so two
    // takers cannot both remove a fresh one) and try to create ours again.
    try {
      fs.renameSync(pidPath, `${pidPath}.stale-${process.pid}`);
      fs.rmSync(`${pidPath}.stale-${process.pid}`, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return null;
}

function readPid(pidPath: string): number | null {
  try {
    const pid = Number.parseInt(fs.readFileSync(pidPath, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function isAlive(pid: number | null): boolean {
  if (pid === null) return true; // being written right now by its creator
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isContended(error: unknown): boolean {
  const errno = (error as { errno?: unknown }).errno;
  return errno === osConstants.errno.EWOULDBLOCK || errno === osConstants.errno.EAGAIN;
}

function contendedError(lockPath: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${lockPath} is locked by another writer`);
  error.code = 'EWOULDBLOCK';
  error.errno = osConstants.errno.EWOULDBLOCK;
  error.syscall = 'flock';
  error.path = lockPath;
  return error;
}

function register(release: () => void): LockToken {
  const token = nextToken++;
  held.set(token, release);
  return token;
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

export function lockDirSync(lockPath: string, waitMs: number, attempt: LockAttempt = attemptLock): LockToken {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const release = attempt(lockPath);
    if (release !== null) return register(release);
    if (Date.now() >= deadline) throw contendedError(lockPath);
    Atomics.wait(sleepCell, 0, 0, RETRY_STEP_MS);
  }
}

export async function lockDir(lockPath: string, waitMs: number, attempt: LockAttempt = attemptLock): Promise<LockToken> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const release = attempt(lockPath);
    if (release !== null) return register(release);
    if (Date.now() >= deadline) throw contendedError(lockPath);
    await new Promise((resolve) => setTimeout(resolve, RETRY_STEP_MS));
  }
}

export function unlockDir(token: LockToken): void {
  const release = held.get(token);
  held.delete(token);
  release?.();
}

/** The pid-file attempt, exposed so tests can exercise the addon-less lock. */
export const pidFileLockAttempt: LockAttempt = attemptPidLock;
