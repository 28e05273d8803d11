import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { pidFileLockAttempt } from '../src/io/dir-lock.js';
import { tempDir } from './helpers/temp-dir.js';

// Above the kernel's pid_max, so never alive.
const DEAD_PID = String(2 ** 22 + 1);

/** The fs calls a pid-file attempt makes; each one is a point where another attempt may run. */
const STEPS = ['openSync', 'readFileSync', 'fstatSync', 'statSync', 'writeFileSync', 'linkSync', 'unlinkSync', 'rmSync', 'readdirSync'] as const;

/**
 * Runs `attempt`, running `other` once right after the attempt's `at`-th fs
 * call (counting from 0). Returns the attempt's result and whether `other` ran.
 */
function interleaved<T>(at: number, attempt: () => T, other: () => void): { result: T; ran: boolean } {
  // Wrapped by hand, not with vi.spyOn, so that nested calls wrap the wrappers.
  const patched = fs as unknown as Record<string, (...args: unknown[]) => unknown>;
  const originals = STEPS.map((name) => patched[name]!);
  let calls = 0;
  let ran = false;
  STEPS.forEach((name, i) => {
    patched[name] = (...args) => {
      const out = originals[i]!.apply(fs, args);
      if (!ran && calls++ === at) {
        ran = true;
        other();
      }
      return out;
    };
  });
  try {
    return { result: attempt(), ran };
  } finally {
    STEPS.forEach((name, i) => (patched[name] = originals[i]!));
  }
}

function staleLock(): { lockPath: string; pidPath: string } {
  const lockPath = path.join(tempDir(), '.segwal.lock');
  fs.writeFileSync(`${lockPath}.pid`, DEAD_PID);
  return { lockPath, pidPath: `${lockPath}.pid` };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the pid-file lock', () => {
  it('a dead owner\'s lock taken over by two attempts, interleaved at the read of its pid, has one holder', () => {
    const { lockPath, pidPath } = staleLock();
    const releases: Array<(() => void) | null> = [];
    let reads = 0;
    const read = fs.readFileSync;
    vi.spyOn(fs, 'readFileSync').mockImplementation(((...args: Parameters<typeof read>) => {
      const out = read(...args);
      if (reads++ === 0) releases.push(pidFileLockAttempt(lockPath));
      return out;
    }) as typeof read);
    releases.push(pidFileLockAttempt(lockPath));
    expect(releases.filter((release) => release !== null)).toHaveLength(1);
    expect(fs.readFileSync(pidPath, 'utf8')).toBe(String(process.pid));
  });

  it('has one holder whichever fs call of a takeover another takeover (or two, nested) runs after', () => {
    let runs = 0;
    for (let outer = 0, outerRan = true; outerRan; outer++) {
      for (let inner = 0, innerRan = true; innerRan && outerRan; inner++) {
        const { lockPath, pidPath } = staleLock();
        const releases: Array<(() => void) | null> = [];
        innerRan = false;
        const { result, ran } = interleaved(outer, () => pidFileLockAttempt(lockPath), () => {
          const nested = interleaved(inner, () => pidFileLockAttempt(lockPath), () => releases.push(pidFileLockAttempt(lockPath)));
          releases.push(nested.result);
          innerRan = nested.ran;
        });
        releases.push(result);
        outerRan = ran;
        runs++;
        const holders = releases.filter((release) => release !== null);
        expect(holders, `another takeover after fs call ${outer}, a third after its call ${inner}`).toHaveLength(1);
        expect(fs.readFileSync(pidPath, 'utf8')).toBe(String(process.pid));
        holders[0]!();
        // Claims and temporaries are all gone once the takeover is done.
        expect(fs.readdirSync(path.dirname(lockPath))).toEqual(['.segwal.lock']);
      }
    }
    expect(runs).toBeGreaterThan(50);
  });

  it('skips and removes the claims of takers that died midway', () => {
    const { lockPath, pidPath } = staleLock();
    const prefix = `${pidPath}.takeover-${fs.statSync(pidPath, { bigint: true }).ino}-`;
    fs.writeFileSync(`${prefix}0`, DEAD_PID);
    fs.writeFileSync(`${prefix}1`, DEAD_PID);
    fs.writeFileSync(`${prefix}0b9d4a3e-temporary`, DEAD_PID);
    const release = pidFileLockAttempt(lockPath);
    expect(release).not.toBeNull();
    expect(fs.readFileSync(pidPath, 'utf8')).toBe(String(process.pid));
    release!();
    expect(fs.readdirSync(path.dirname(lockPath))).toEqual(['.segwal.lock']);
  });

  it('leaves a dead owner\'s lock to a live claimant', () => {
    const { lockPath, pidPath } = staleLock();
    const claim = `${pidPath}.takeover-${fs.statSync(pidPath, { bigint: true }).ino}-0`;
    fs.writeFileSync(claim, String(process.pid));
    expect(pidFileLockAttempt(lockPath)).toBeNull();
    expect(fs.readFileSync(pidPath, 'utf8')).toBe(DEAD_PID);
    expect(fs.readdirSync(path.dirname(lockPath)).sort()).toEqual(['.segwal.lock', '.segwal.lock.pid', path.basename(claim)]);
  });
});
