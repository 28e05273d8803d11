import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fsyncBeforeAckProblems, parseStrace, type IoEvent } from './helpers/ack-trace.js';
import { BACKENDS } from './helpers/backends.js';
import { DIST_ENTRY, ROOT } from './helpers/child.js';
import { tempDir } from './helpers/temp-dir.js';

/*
 * Does each backend really fsync before a commit is acknowledged?
 *
 * The fault and crash test ios sit above the io seam and trust the `sync` flag
 * they pass to `appendFrames`; nothing there sees whether the backend then
 * calls fdatasync. So these tests look from below the seam, at a child
 * process (helpers/ack-child.mjs, the compiled dist/) that writes a marker
 * with write(2) just before each commit and just after its acknowledgement:
 *   - every backend, under strace: the syscalls themselves;
 *   - the js backend, with fs.fdatasync delayed by 300 ms in a preload hook
 *     (helpers/fsync-hook.mjs): a commit that resolves without awaiting its
 *     fsync is seen resolving before the fsync's callback.
 * Rule, per commit: between its markers, a write to the segment, then an
 * fdatasync of the segment that started after that write and returned before
 * the ack marker.
 */

const COMMITS = 3;
const CHILD = path.join(ROOT, 'test/helpers/ack-child.mjs');
const HOOK = pathToFileURL(path.join(ROOT, 'test/helpers/fsync-hook.mjs')).href;
const STRACE = '/usr/bin/strace';

const SCENARIOS = [
  { label: 'per-commit commit()', mode: 'per-commit', api: 'async' },
  { label: 'per-commit commitSync()', mode: 'per-commit', api: 'sync' },
  { label: 'group commit({ durable: true })', mode: 'group', api: 'async' },
  { label: 'group commitSync() then syncSync()', mode: 'group', api: 'sync' },
] as const;

function run(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env }, (error, _stdout, stderr) => (error ? reject(new Error(`${file} failed: ${stderr}`, { cause: error })) : resolve()));
  });
}

/** The path the kernel reports for segment 1 of a fresh log in `dir`. */
function firstSegment(dir: string): string {
  return path.join(fs.realpathSync(dir), '0000000001.wal');
}

function requireStrace(): void {
  try {
    execFileSync(STRACE, ['-V'], { stdio: 'pipe' });
  } catch (error) {
    throw new Error(
      `${STRACE} is needed to prove that the backends fdatasync before acknowledging a commit, and it could not run ` +
        `(${String(error)}). Install it (apt-get install strace; .ci/run does).`,
    );
  }
}

describe.each(BACKENDS)('the $name backend, traced with strace', ({ name }) => {
  it.each(SCENARIOS)('$label: each ack comes after an fdatasync of the segment that followed its pwrite64', async ({ mode, api }) => {
    requireStrace();
    const dir = path.join(tempDir(), 'log');
    const trace = path.join(tempDir(), 'trace');
    await run(STRACE, ['-f', '-y', '-e', 'trace=fdatasync,pwrite64,write', '-o', trace, process.execPath, CHILD, DIST_ENTRY, dir, name, mode, api, String(COMMITS)]);
    const events = parseStrace(fs.readFileSync(trace, 'utf8'));
    expect(events.filter((event) => event.kind === 'marker')).toHaveLength(2 * COMMITS);
    expect(fsyncBeforeAckProblems(events, firstSegment(dir), COMMITS)).toEqual([]);
  });
});

describe('the js backend, with fs.fdatasync delayed by 300 ms', () => {
  it.each(SCENARIOS)('$label: resolves only after the fdatasync callback of the segment', async ({ mode, api }) => {
    const dir = path.join(tempDir(), 'log');
    const log = path.join(tempDir(), 'fs-events.json');
    const env = { ...process.env, SEGWAL_FS_LOG: log, SEGWAL_FSYNC_DELAY_MS: '300' };
    await run(process.execPath, ['--import', HOOK, CHILD, DIST_ENTRY, dir, 'js', mode, api, String(COMMITS)], env);
    const events = JSON.parse(fs.readFileSync(log, 'utf8')) as IoEvent[];
    expect(events.filter((event) => event.kind === 'marker')).toHaveLength(2 * COMMITS);
    expect(fsyncBeforeAckProblems(events, firstSegment(dir), COMMITS)).toEqual([]);
  });
});
