import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
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
    if (!removeIfOwnerDead(pidPath)) return null;
  }
  return null;
}

/*
 * Taking over must remove the dead owner's file F and nothing else, but an
 * unlink or rename acts on whatever the name holds by then: possibly a live
 * lock that another taker has just created. So only a claimant unlinks, after
 * claiming F with `<pid file>.takeover-<F's inode>-<i>`, linked into place
 * exclusively and holding the claimant's pid. Why at most one unlinks F, and
 * nothing else:
 * - Each claimant keeps F open, which keeps F's inode number from going to
 *   another file; so "the pid file still has that number", checked after
 *   claiming, means it is still F. F, once unlinked, never comes back.
 * - Until F is unlinked, a claim goes only by its owner's hand. So two
 *   claimants that both found F in place held their claims at once. With the
 *   same i, link let only one create it. Otherwise the higher one walked past
 *   the lower index, which it does only at a dead owner's claim: not the lower
 *   one's (alive), nor an earlier one, which, its owner dead, never went away
 *   to let the lower one in.
 * - A claimant killed midway leaves a claim of a dead pid, which the next one
 *   skips; whoever unlinks F then removes all of F's claims and temporaries,
 *   which matter no more.
 */
/** Unlinks the pid file if its owner is dead: whether to try creating it again. */
function removeIfOwnerDead(pidPath: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(pidPath, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw error;
  }
  try {
    if (isAlive(readPid(fd))) return false;
    const ino = fs.fstatSync(fd, { bigint: true }).ino;
    const prefix = `${pidPath}.takeover-${ino}-`;
    const claim = claimTakeover(prefix);
    if (claim === null) return false;
    try {
      if (fs.statSync(pidPath, { bigint: true, throwIfNoEntry: false })?.ino !== ino) return false;
      fs.unlinkSync(pidPath);
    } finally {
      fs.rmSync(claim, { force: true });
    }
    const dir = path.dirname(prefix);
    for (const name of fs.readdirSync(dir)) {
      if (name.startsWith(path.basename(prefix))) fs.rmSync(path.join(dir, name), { force: true });
    }
    return true;
  } finally {
    fs.closeSync(fd);
  }
}

/** The first free claim after dead owners' ones, or null at a live owner's. */
function claimTakeover(prefix: string): string | null {
  // Written first and linked in, so a claim never exists without its pid.
  const mine = `${prefix}${randomUUID()}`;
  fs.writeFileSync(mine, String(process.pid), { flag: 'wx' });
  try {
    for (let i = 0; ; i++) {
      const claim = `${prefix}${i}`;
      try {
        fs.linkSync(mine, claim);
        return claim;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return null; // swept: F is gone already
        if (code !== 'EEXIST') throw error;
      }
      if (isAlive(readPid(claim))) return null;
    }
  } finally {
    fs.rmSync(mine, { force: true });
  }
}

function readPid(file: string | number): number | null {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function isAlive(pid: number | null): boolean {
  if (pid === null) return true; // being written by its creator, or just removed: not ours to take
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
