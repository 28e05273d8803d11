import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { Wal } from '../src/index.js';
import { inspectCommand } from '../src/cli/inspect.js';
import { statsCommand } from '../src/cli/stats.js';
import { parseCommand, type Command, type Output } from '../src/cli/usage.js';
import { verifyCommand } from '../src/cli/verify.js';
import { ROOT } from './helpers/child.js';
import { expectDense } from './helpers/lsn-spans.js';
import { segmentNames, snapshotFiles, tempDir } from './helpers/temp-dir.js';

const BIN = path.join(ROOT, 'dist/cli/main.js');

/** Runs the real bin (compiled by the global setup) as a subprocess. */
function segwal(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

/** Runs a command in this process (as main.ts does, without the process around it), capturing its output. */
async function runInProcess(command: Command, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const parsed = parseCommand(command, args);
  if (parsed.help) throw new Error('runInProcess: not for --help');
  let stdout = '';
  let stderr = '';
  const out: Output = { stdout: async (text) => void (stdout += text), stderr: (text) => void (stderr += text), stderrIsTty: false };
  const code = await command.run(parsed.dir, parsed.values, out);
  return { code, stdout, stderr };
}

/**
 * Runs `truncate` the first time anything in this process opens `file` through
 * fs.open (how the CLI's scan opens a segment through the js io, after listing
 * the directory). `deleted()` is what `truncate` returned.
 */
function truncateWhenOpened(file: string, truncate: () => number): { deleted: () => number } {
  const open = fs.open.bind(fs);
  let deleted = 0;
  let fired = false;
  const spy = vi.spyOn(fs, 'open').mockImplementation(((...args: Parameters<typeof open>) => {
    if (!fired && path.resolve(String(args[0])) === file) {
      fired = true;
      deleted = truncate();
    }
    return (open as (...a: unknown[]) => void)(...args);
  }) as typeof fs.open);
  onTestFinished(() => spy.mockRestore());
  return { deleted: () => deleted };
}

/**
 * A log of several segments: 30 commits (one Commit record each, LSNs 1..90),
 * a begin() transaction committed in three records (91..93), one aborted
 * (94..96) and one open transaction (97, 98), a Checkpoint (99).
 */
async function sampleLog(options: { keepOpen?: boolean } = {}) {
  const dir = tempDir();
  const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 1024, sync: 'none' });
  for (let i = 0; i < 30; i++) await wal.commit([Buffer.from(`event ${i} ${'x'.repeat(150)}`)]);
  const multiStep = wal.begin();
  multiStep.appendBatch([Buffer.from('batch a'), Buffer.from('batch b')]);
  await multiStep.commit();
  const aborted = wal.begin();
  aborted.append(Buffer.from('aborted'));
  aborted.abort();
  const open = wal.begin();
  open.append(Buffer.from([0xff, 0x00, 0xfe]));
  wal.checkpointMarker(6);
  await wal.flush();
  if (options.keepOpen !== true) await wal.close();
  return { dir, wal, openBegin: open.beginLsn, abortedBegin: aborted.beginLsn, multiStepBegin: multiStep.beginLsn };
}

/** The LSNs of sampleLog's records in order: a Commit record is listed under its commit LSN. */
const SAMPLE_LSNS = [...Array.from({ length: 30 }, (_, i) => 3 * i + 3), ...Array.from({ length: 9 }, (_, i) => 91 + i)];

/** The offset of a segment file's second frame. */
function secondFrameAt(bytes: Buffer): number {
  return 32 + bytes.readUInt32LE(32);
}

describe('the segwal CLI', () => {
  it('--help works for the bin and every command (exit 0); bad usage exits 2', async () => {
    const help = await segwal('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/inspect.*\n.*verify.*\n.*dump.*\n.*stats/);
    for (const command of ['inspect', 'verify', 'dump', 'stats']) {
      const { code, stdout } = await segwal(command, '--help');
      expect(code, command).toBe(0);
      expect(stdout, command).toContain(`segwal ${command} <dir>`);
    }
    const none = await segwal();
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no command given');
    expect((await segwal('explode', '/tmp')).code).toBe(2);
    expect((await segwal('inspect')).code).toBe(2);
    expect((await segwal('dump', tempDir(), '--from', 'ten')).stderr).toContain('--from takes an LSN');
    expect((await segwal('dump', tempDir(), '--from', '0')).code).toBe(2);
    expect((await segwal('dump', tempDir(), '--payload', 'rot13')).code).toBe(2);
    expect((await segwal('verify', tempDir(), 'second-dir')).code).toBe(2);
    expect((await segwal('dump', tempDir(), '--kind', 'Nope')).code).toBe(2);
    expect((await segwal('stats', tempDir(), '--bogus')).code).toBe(2);
    expect((await segwal('inspect', path.join(tempDir(), 'missing'))).code).toBe(2);
  });

  it('inspect: one row per segment and the totals; --json has the same rows', async () => {
    const { dir } = await sampleLog();
    const names = segmentNames(dir);
    const text = await segwal('inspect', dir);
    expect(text.code).toBe(0);
    // The log id, a blank line, the header row, one row per segment, the totals.
    const lines = text.stdout.trim().split('\n');
    expect(lines.length).toBe(2 + 1 + names.length + 1);
    expect(lines[0]).toMatch(/^log id [0-9a-f]{32}$/);
    expect(text.stdout).toMatch(new RegExp(`total .* ${names.length} segments`));
    const { stdout } = await segwal('inspect', dir, '--json');
    const report = JSON.parse(stdout);
    expect(lines[0]).toBe(`log id ${report.logId}`);
    expect(report.segments.map((row: { id: number }) => row.id)).toEqual(names.map((name) => Number.parseInt(name, 10)));
    expect(report.segments[0]).toMatchObject({ baseLsn: 1, sealed: true, state: 'sealed' });
    expect(report.segments.at(-1)).toMatchObject({ sealed: false, state: 'active' });
    const records = report.segments.reduce((sum: number, row: { records: number }) => sum + row.records, 0);
    expect(report.totals.records).toBe(records);
    expect(records).toBe(SAMPLE_LSNS.length);
    const sizes = names.reduce((sum, name) => sum + fs.statSync(path.join(dir, name)).size, 0);
    expect(report.totals.bytes).toBe(sizes);
  });

  it('verify: exit 0 on a good log (silent on a piped stderr); exit 1 naming file, offset and LSN on damage in a segment that is not the last', async () => {
    const { dir } = await sampleLog();
    const good = await segwal('verify', dir);
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/^ok: \d+ segments, 39 records, LSN 1\.\.99/);
    expect(good.stderr).toBe('');
    const second = path.join(dir, segmentNames(dir)[1]!);
    const bytes = fs.readFileSync(second);
    const baseLsn = Number(bytes.readBigUInt64LE(12));
    bytes[32 + 10] = bytes[32 + 10]! ^ 0x55; // inside the first frame after the header
    fs.writeFileSync(second, bytes);
    const damaged = await segwal('verify', dir);
    expect(damaged.code).toBe(1);
    expect(damaged.stdout).toMatch(/^DAMAGED: 1 problem;/);
    expect(damaged.stdout).toContain('WAL_CRC_MISMATCH');
    expect(damaged.stdout).toContain(`file   ${second}\n`);
    expect(damaged.stdout).toContain('offset 32\n');
    expect(damaged.stdout).toContain(`LSN    ${baseLsn}\n`);
    const json = JSON.parse((await segwal('verify', dir, '--json')).stdout);
    expect(json.ok).toBe(false);
    expect(json.problems).toEqual([expect.objectContaining({ code: 'WAL_MALFORMED', file: second, offset: 32, lsn: baseLsn })]);
    // The other commands see it too, and still describe every segment.
    expect((await segwal('stats', dir)).code).toBe(1);
    const inspect = JSON.parse((await segwal('inspect', dir, '--json')).stdout);
    expect(inspect.segments.length).toBe(segmentNames(dir).length);
    expect(inspect.segments[1]).toMatchObject({ state: 'damaged', baseLsn, records: 0 });
    expect(inspect.segments.slice(2).every((row: { state: string }) => row.state !== 'damaged')).toBe(true);
    expect(inspect.problems).toHaveLength(1);
  });

  it('verify lists the damage in every segment, not just the first, resuming after each damaged segment', async () => {
    const { dir } = await sampleLog();
    const names = segmentNames(dir);
    expect(names.length).toBeGreaterThan(4);
    const damage = (name: string, at: number) => {
      const file = path.join(dir, name);
      const bytes = fs.readFileSync(file);
      bytes[at] = bytes[at]! ^ 0xff;
      fs.writeFileSync(file, bytes);
      return file;
    };
    const secondFrame = secondFrameAt(fs.readFileSync(path.join(dir, names[3]!)));
    const first = damage(names[1]!, 40);
    const second = damage(names[3]!, secondFrame + 6); // inside the second frame
    const { code, stdout } = await segwal('verify', dir, '--json');
    expect(code).toBe(1);
    const { problems } = JSON.parse(stdout);
    expect(problems.map((problem: { file: string }) => problem.file)).toEqual([first, second]);
    expect(problems[1].offset).toBe(secondFrame);
    expect((await segwal('verify', dir)).stdout).toMatch(/^DAMAGED: 2 problems;[^]*problem 1: [^]*problem 2: /);
  });

  it('verify checks a truncated log against the fence of its last Checkpoint, and against --checkpoint-lsn', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 1024, sync: 'none' });
    const early = wal.begin();
    early.append(Buffer.from('begun early'));
    for (let i = 0; i < 20; i++) await wal.commit([Buffer.alloc(120, i)]);
    const lateLsn = early.append(Buffer.from('still going'));
    early.commit();
    await wal.commit([Buffer.alloc(120, 99)]);
    const fence = await wal.checkpoint(() => undefined);
    await wal.close();
    expect(segmentNames(dir)[0]).not.toBe('0000000001.wal'); // the TxBegin went with the truncated segments
    const ok = await segwal('verify', dir, '--json');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, checkpointLsn: fence, coveredByFence: 2 });
    // Open with no fence would refuse the records whose TxBegin is gone: so does verify.
    const strict = await segwal('verify', dir, '--checkpoint-lsn', '0');
    expect(strict.code).toBe(1);
    expect(strict.stdout).toContain(`record names TxBegin LSN ${early.beginLsn}`);
    expect(strict.stdout).toContain(`LSN    ${lateLsn}\n`);
    await expect(Wal.open({ dir, io: 'js', checkpointLsn: 0 })).rejects.toMatchObject({ code: 'WAL_MALFORMED', lsn: lateLsn });
  });

  it('verify reports a torn tail in the last segment as what open would cut, and exits 0', async () => {
    const { dir } = await sampleLog();
    const last = path.join(dir, segmentNames(dir).at(-1)!);
    fs.appendFileSync(last, Buffer.from([9, 9, 9]));
    const { code, stdout } = await segwal('verify', dir);
    expect(code).toBe(0);
    const [, offset, discarded] = /torn tail in segment \d+ at offset (\d+) \((\d+) bytes\).*open would cut it/.exec(stdout)!;
    const inspect = await segwal('inspect', dir, '--json');
    expect(inspect.code).toBe(0);
    const row = JSON.parse(inspect.stdout).segments.at(-1);
    // The garbage sits after the zeros of the preallocated rest: all of it, zeros included, is what open cuts.
    expect(row).toMatchObject({ state: 'torn tail', preallocatedTail: 0, tornTail: { offset: Number(offset), discardedBytes: Number(discarded) } });
    expect(Number(offset) + Number(discarded)).toBe(fs.statSync(last).size);
    expect((await segwal('stats', dir)).code).toBe(0);
    const dump = await segwal('dump', dir, '--payload', 'none');
    expect(dump.code).toBe(0);
    expect(dump.stdout.trim().split('\n')).toHaveLength(SAMPLE_LSNS.length);
  });

  it('dump prints the records before damage, then names it on stderr and exits 1', async () => {
    const { dir } = await sampleLog();
    const second = path.join(dir, segmentNames(dir)[1]!);
    const bytes = fs.readFileSync(second);
    const baseLsn = Number(bytes.readBigUInt64LE(12));
    const secondFrame = secondFrameAt(bytes);
    bytes[secondFrame + 30] = bytes[secondFrame + 30]! ^ 1; // inside the segment's second frame
    fs.writeFileSync(second, bytes);
    const { code, stdout, stderr } = await segwal('dump', dir, '--payload', 'none');
    expect(code).toBe(1);
    // Every record up to the segment's first one, a Commit record spanning baseLsn..baseLsn + 2.
    expect(stdout.trim().split('\n').map((line) => JSON.parse(line).lsn)).toEqual(SAMPLE_LSNS.filter((lsn) => lsn <= baseLsn + 2));
    expect(JSON.parse(stderr.replace(/^damage: /, ''))).toMatchObject({ code: 'WAL_MALFORMED', file: second, offset: secondFrame, lsn: baseLsn + 3 });
  });

  it('dump: NDJSON, one record a line, with --from/--to/--kind/--tx and payload modes', async () => {
    const { dir, openBegin, abortedBegin, multiStepBegin } = await sampleLog();
    const lines = async (...args: string[]) => (await segwal('dump', dir, ...args)).stdout.trim().split('\n').map((line) => JSON.parse(line));
    const all = await lines();
    expect(all.map((record) => record.lsn)).toEqual(SAMPLE_LSNS);
    expectDense(all);
    expect(all[0]).toMatchObject({ kind: 'Commit', lsn: 3, txBeginLsn: 1, events: [{ encoding: 'utf8', data: expect.stringMatching(/^event 0 /) }] });
    expect(all[30]).toMatchObject({ kind: 'TxBegin', lsn: multiStepBegin });
    expect(all[31]).toMatchObject({ kind: 'MutationBatch', txBeginLsn: multiStepBegin, events: [{ encoding: 'utf8', data: 'batch a' }, { encoding: 'utf8', data: 'batch b' }] });
    const ranged = await lines('--from', String(multiStepBegin), '--to', String(multiStepBegin + 2));
    expect(ranged.map((record) => record.kind)).toEqual(['TxBegin', 'MutationBatch', 'TxCommit']);
    // A range inside a Commit record's span (4..6) shows the record.
    expect((await lines('--from', '5', '--to', '5')).map((record) => [record.kind, record.lsn])).toEqual([['Commit', 6]]);
    expect((await lines('--kind', 'Commit')).map((record) => record.lsn)).toEqual(SAMPLE_LSNS.slice(0, 30));
    expect((await lines('--tx', '4')).map((record) => [record.kind, record.lsn])).toEqual([['Commit', 6]]);
    const aborts = (await segwal('dump', dir, '--kind', 'TxAbort')).stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(aborts).toEqual([expect.objectContaining({ kind: 'TxAbort', txBeginLsn: abortedBegin })]);
    const tx = (await segwal('dump', dir, '--tx', String(openBegin))).stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(tx.map((record) => record.kind)).toEqual(['TxBegin', 'Mutation']);
    expect(tx[1].payload).toEqual({ encoding: 'base64', data: Buffer.from([0xff, 0x00, 0xfe]).toString('base64') });
    const hex = JSON.parse((await segwal('dump', dir, '--tx', String(openBegin), '--kind', 'mutation', '--payload', 'hex')).stdout);
    expect(hex.payload).toEqual({ encoding: 'hex', data: 'ff00fe' });
    const none = JSON.parse((await segwal('dump', dir, '--from', String(multiStepBegin + 1), '--to', String(multiStepBegin + 1), '--payload', 'none')).stdout);
    expect(none.events).toEqual([null, null]);
  });

  it('stats: records by kind, transactions committed / aborted / open, LSN range, oldest and newest segment', async () => {
    const { dir } = await sampleLog();
    const names = segmentNames(dir);
    const stats = JSON.parse((await segwal('stats', dir, '--json')).stdout);
    expect(stats.recordsByKind).toEqual({ Commit: 30, TxBegin: 3, MutationBatch: 1, TxCommit: 1, TxAbort: 1, Mutation: 2, Checkpoint: 1 });
    expect(stats.transactions).toEqual({ committed: 31, aborted: 1, openAtEnd: 1 });
    expect(stats.events).toBe(34);
    expect(stats.lsnRange).toEqual({ first: 1, last: 99 });
    expect(stats.segments).toEqual({ count: names.length, oldest: 1, newest: names.length });
    expect((await segwal('stats', dir)).stdout).toContain('31 committed, 1 aborted, 1 open at end');
  });

  it('works on a log a live Wal holds open and is writing, and changes no file', async () => {
    const { dir, wal } = await sampleLog({ keepOpen: true });
    const segmentsBefore = segmentNames(dir).length;
    const before = snapshotFiles(dir);
    for (const args of [['inspect'], ['verify'], ['dump'], ['stats']]) {
      const { code } = await segwal(...args, dir);
      expect(code, args[0]).toBe(0);
    }
    expect(snapshotFiles(dir)).toEqual(before);
    // Now with the Wal appending and rotating while every command reads.
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing || i < 50; i++) {
        await wal.commit([Buffer.alloc(80, i)]);
        if (i % 5 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const runs = await Promise.all([
      segwal('dump', dir, '--payload', 'none'),
      segwal('inspect', dir),
      segwal('verify', dir),
      segwal('stats', dir, '--json'),
    ]);
    writing = false;
    await writer;
    for (const run of runs) expect(run.code, run.stdout + run.stderr).toBe(0);
    const dumped = runs[0]!.stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(dumped.length).toBeGreaterThanOrEqual(SAMPLE_LSNS.length);
    expectDense(dumped);
    expect(JSON.parse(runs[3]!.stdout).records).toBeGreaterThanOrEqual(SAMPLE_LSNS.length);
    await wal.close();
    expect(segmentNames(dir).length).toBeGreaterThan(segmentsBefore); // it rotated while we read
  });

  // A live Wal truncating while a command scans: the scan lists the segments, and before it
  // reads the first one, truncation deletes it (and others). The command must start its scan
  // over and report the log as it now is. The truncation is made to happen exactly then (when
  // the command opens that segment), not raced against a timer.
  type Report = Record<string, any>;
  const reportsOf: Array<[string, Command, (report: Report, ids: number[], fence: number) => void]> = [
    ['inspect', inspectCommand, (report, ids) => expect(report.segments.map((row: { id: number }) => row.id)).toEqual(ids)],
    ['verify', verifyCommand, (report, ids, fence) => expect(report).toMatchObject({ ok: true, segments: ids.length, checkpointLsn: fence })],
    ['stats', statsCommand, (report, ids) => expect(report.segments).toEqual({ count: ids.length, oldest: ids[0], newest: ids.at(-1) })],
  ];
  it.each(reportsOf)('%s keeps working when a live Wal truncates the segment it is about to read', async (_name, command, expectReport) => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 1024, sync: 'none' });
    for (let i = 0; i < 30; i++) await wal.commit([Buffer.alloc(100, i)]);
    const fence = wal.durableLsn;
    wal.checkpointMarker(fence);
    await wal.flush();
    const before = segmentNames(dir);
    expect(before.length).toBeGreaterThan(3);
    const truncation = truncateWhenOpened(path.join(dir, before[0]!), () => wal.truncateUpToSync(fence));
    try {
      const run = await runInProcess(command, [dir, '--json']);
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(truncation.deleted(), 'segments the truncation deleted under the scan').toBeGreaterThan(0);
      const after = segmentNames(dir);
      expect(after).toEqual(before.slice(truncation.deleted()));
      // The report describes the log after the truncation: the scan started over.
      expectReport(JSON.parse(run.stdout), after.map((name) => Number.parseInt(name, 10)), fence);
    } finally {
      await wal.close();
    }
    expect((await segwal('verify', dir)).code).toBe(0);
  });
});
