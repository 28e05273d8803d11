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
    expect(fs.readFileSync(pidPath, 'utf8')).toMatch(new RegExp(`^${process.pid} `));
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
        expect(fs.readFileSync(pidPath, 'utf8')).toMatch(new RegExp(`^${process.pid} `));
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
    expect(fs.readFileSync(pidPath, 'utf8')).toMatch(new RegExp(`^${process.pid} `));
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

  it('keeps a live owner\'s lock, and says whose it is: the pid, the boot and the start time', () => {
    const lockPath = path.join(tempDir(), '.segwal.lock');
    const release = pidFileLockAttempt(lockPath);
    expect(release).not.toBeNull();
    const bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    expect(fs.readFileSync(`${lockPath}.pid`, 'utf8')).toMatch(new RegExp(`^${process.pid} ${bootId}:\\d+$`));
    expect(pidFileLockAttempt(lockPath)).toBeNull();
    release!();
    expect(fs.readdirSync(path.dirname(lockPath))).toEqual(['.segwal.lock']);
  });

  it('takes over a live pid that another process held before (a reused pid)', () => {
    const { lockPath, pidPath } = staleLock();
    const bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    fs.writeFileSync(pidPath, `${process.pid} ${bootId}:1`); // this pid, started at another time
    const release = pidFileLockAttempt(lockPath);
    expect(release).not.toBeNull();
    expect(fs.readFileSync(pidPath, 'utf8')).not.toBe(`${process.pid} ${bootId}:1`);
    release!();
    fs.writeFileSync(pidPath, `${process.pid} 00000000-another-boot:${process.pid}`);
    expect(pidFileLockAttempt(lockPath)).not.toBeNull();
  });

  it('takes over a pid file that names no owner (bytes lost to a power cut, or a damaged file)', () => {
    for (const text of ['', 'not a pid', '0']) {
      const { lockPath, pidPath } = staleLock();
      fs.writeFileSync(pidPath, text);
      const release = pidFileLockAttempt(lockPath);
      expect(release, JSON.stringify(text)).not.toBeNull();
      expect(fs.readFileSync(pidPath, 'utf8')).toMatch(new RegExp(`^${process.pid} `));
    }
  });

  it('never shows the pid file without its owner, and removes what openers killed before linking it left', () => {
    const lockPath = path.join(tempDir(), '.segwal.lock');
    const pidPath = `${lockPath}.pid`;
    const left = `${pidPath}.new-0b9d4a3e-killed`;
    const live = `${pidPath}.new-0b9d4a3e-live`;
    fs.writeFileSync(left, DEAD_PID);
    fs.writeFileSync(live, String(process.pid));
    const seen: string[] = [];
    const link = fs.linkSync;
    vi.spyOn(fs, 'linkSync').mockImplementation((from, to) => {
      seen.push(fs.readFileSync(from, 'utf8'));
      link(from, to);
      seen.push(fs.readFileSync(to, 'utf8'));
    });
    const release = pidFileLockAttempt(lockPath);
    expect(release).not.toBeNull();
    expect(seen).toHaveLength(2);
    expect(seen.every((text) => text.startsWith(`${process.pid} `))).toBe(true);
    expect(fs.readdirSync(path.dirname(lockPath)).sort()).toEqual(['.segwal.lock', '.segwal.lock.pid', path.basename(live)]);
  });

  it('writes and trusts the bare pid where /proc cannot say more', () => {
    const read = fs.readFileSync;
    vi.spyOn(fs, 'readFileSync').mockImplementation(((file: fs.PathOrFileDescriptor, options?: unknown) => {
      if (String(file).startsWith('/proc/')) throw Object.assign(new Error('no /proc here'), { code: 'ENOENT' });
      return read(file, options as BufferEncoding);
    }) as typeof read);
    const lockPath = path.join(tempDir(), '.segwal.lock');
    const release = pidFileLockAttempt(lockPath);
    expect(release).not.toBeNull();
    expect(read(`${lockPath}.pid`, 'utf8')).toBe(String(process.pid));
    expect(pidFileLockAttempt(lockPath)).toBeNull();
    release!();
    // A file that names a start time is still kept while its pid lives, when the time cannot be checked.
    fs.writeFileSync(`${lockPath}.pid`, `${process.pid} some-boot:1`);
    expect(pidFileLockAttempt(lockPath)).toBeNull();
  });
});
