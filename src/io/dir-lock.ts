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
 * no flock, so the lock is `.segwal.lock.pid`, holding the owner's identity
 * (its pid and, where /proc tells them, the boot and the process's start time,
 * so a pid reused by another process does not keep the lock); a file whose
 * owner is no longer alive is taken over. That excludes every other segwal
 * writer on the same machine that also runs without the addon; the two
 * mechanisms do not see each other, which is why one installation always uses
 * the same one.
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
    if (linkOwnedFile(`${pidPath}.new-`, pidPath) === 'linked') {
      // Temporaries left by openers killed between writing one and removing it.
      removeFilesStartingWith(`${pidPath}.new-`, (file) => !isAlive(readOwner(file)));
      return () => fs.rmSync(pidPath, { force: true });
    }
    if (!removeIfOwnerDead(pidPath)) return null;
  }
  return null;
}

/*
 * The pid file and the claims are written under a temporary name, then linked
 * into place (link, unlike rename, fails when the name exists): so no reader
 * ever sees one half written, and one that holds no owner is damage (say, a
 * power loss that kept the name but not the bytes), never a writer at work.
 */
/** Links a new file holding this process's identity to `target`, unless `target` exists. */
function linkOwnedFile(temporaryPrefix: string, target: string): 'linked' | 'exists' | 'swept' {
  const temporary = `${temporaryPrefix}${randomUUID()}`;
  fs.writeFileSync(temporary, ownIdentity(), { flag: 'wx' });
  try {
    fs.linkSync(temporary, target);
    return 'linked';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return 'exists';
    if (code === 'ENOENT') return 'swept';
    throw error;
  } finally {
    fs.rmSync(temporary, { force: true });
  }
}

/** Removes the files whose path starts with `prefix` (those `which` picks). */
function removeFilesStartingWith(prefix: string, which: (file: string) => boolean = () => true): void {
  const dir = path.dirname(prefix);
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name);
    if (name.startsWith(path.basename(prefix)) && which(file)) fs.rmSync(file, { force: true });
  }
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
 *   which matter no more. A claim that is gone when read was removed by its
 *   owner, done with F; walking past it is safe, as F is gone or going.
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
    if (isAlive(readOwner(fd))) return false;
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
    removeFilesStartingWith(prefix);
    return true;
  } finally {
    fs.closeSync(fd);
  }
}

/** The first free claim after dead owners' ones, or null at a live owner's. */
function claimTakeover(prefix: string): string | null {
  for (let i = 0; ; i++) {
    const claim = `${prefix}${i}`;
    const outcome = linkOwnedFile(prefix, claim);
    if (outcome === 'linked') return claim;
    if (outcome === 'swept') return null; // F is gone already
    if (isAlive(readOwner(claim))) return null;
  }
}

/** Who holds a lock or claim file: a pid, and where /proc tells it, which process had that pid. */
interface Owner {
  pid: number;
  identity: string | null;
}

function ownIdentity(): string {
  const identity = processIdentity(process.pid);
  return identity === null ? String(process.pid) : `${process.pid} ${identity}`;
}

/** The boot and the start time of a process (Linux), which a pid reused later does not share. */
function processIdentity(pid: number): string | null {
  try {
    const bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces and parentheses); the start time is field 22.
    const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return startTime === undefined ? null : `${bootId}:${startTime}`;
  } catch {
    return null;
  }
}

/** The owner a file names, or null when it names none (damaged, or removed meanwhile). */
function readOwner(file: string | number): Owner | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const match = /^(\d+)(?: (\S+))?$/.exec(text);
  const pid = match === null ? Number.NaN : Number(match[1]);
  return Number.isSafeInteger(pid) && pid > 0 ? { pid, identity: match![2] ?? null } : null;
}

function isAlive(owner: Owner | null): boolean {
  if (owner === null) return false; // files are linked in whole: one naming no owner is damage or gone
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (owner.identity === null) return true;
  // A pid whose identity cannot be read (no /proc, or it exited meanwhile) counts as the owner's.
  const now = processIdentity(owner.pid);
  return now === null || now === owner.identity;
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
