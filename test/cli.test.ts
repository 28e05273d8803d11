import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { Wal } from '../src/index.js';
import { jsIo } from '../src/io/js.js';
import { runAsync } from '../src/io/program.js';
import { writeLogId } from '../src/log-id.js';
import { inspectCommand } from '../src/cli/inspect.js';
import { statsCommand } from '../src/cli/stats.js';
import { parseCommand, type Command, type Output } from '../src/cli/usage.js';
import { verifyCommand } from '../src/cli/verify.js';
import { ROOT } from './helpers/child.js';
import { runCli as segwal } from './helpers/cli.js';
import { expectDense } from './helpers/lsn-spans.js';
import { segmentNames, snapshotFiles, tempDir } from './helpers/temp-dir.js';

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
    // An empty directory is not a log (exit 2 too): each refusal must be for the flag, before the directory is read.
    expect(await segwal('dump', tempDir(), '--from', '0')).toMatchObject({ code: 2, stderr: expect.stringContaining('--from takes an LSN') });
    expect(await segwal('dump', tempDir(), '--payload', 'rot13')).toMatchObject({ code: 2, stderr: expect.stringContaining('--payload takes one of') });
    expect(await segwal('verify', tempDir(), 'second-dir')).toMatchObject({ code: 2, stderr: expect.stringContaining('expected one log directory') });
    expect(await segwal('dump', tempDir(), '--kind', 'Nope')).toMatchObject({ code: 2, stderr: expect.stringContaining('--kind takes one of') });
    expect(await segwal('stats', tempDir(), '--bogus')).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown option --bogus') });
    expect(await segwal('inspect', path.join(tempDir(), 'missing'))).toMatchObject({ code: 2, stderr: expect.stringContaining('ENOENT') });
  });

  it('a directory that is not a segwal log (empty, or foreign files only) is exit 2 "not a segwal log" for every command', async () => {
    const empty = tempDir();
    const foreign = tempDir();
    fs.writeFileSync(path.join(foreign, 'notes.txt'), 'not a log');
    fs.writeFileSync(path.join(foreign, '0000000001.wal.bak'), 'not a segment name');
    for (const dir of [empty, foreign]) {
      for (const command of ['inspect', 'verify', 'dump', 'stats']) {
        expect(await segwal(command, dir), `${command} ${dir}`).toEqual({
          code: 2,
          stdout: '',
          stderr: `segwal ${command}: not a segwal log: ${dir} holds no segment file and no .segwal.id\n`,
        });
      }
    }
  });

  it('a directory holding only the log id is a log being created: an empty log (exit 0), which open finishes with that id', async () => {
    const dir = tempDir();
    const logId = 'c0ffee00c0ffee00c0ffee00c0ffee00';
    await runAsync(jsIo, writeLogId(dir, logId));
    const inspect = await segwal('inspect', dir);
    expect(inspect).toMatchObject({ code: 0, stderr: '' });
    expect(inspect.stdout).toMatch(new RegExp(`^log id ${logId}\n[^]* 0 segments\n$`));
    expect(await segwal('verify', dir)).toEqual({ code: 0, stdout: 'ok: 0 segments, 0 records, checked as open with checkpointLsn 0 checks them\n', stderr: '' });
    expect(JSON.parse((await segwal('stats', dir, '--json')).stdout)).toMatchObject({ records: 0, segments: { count: 0 } });
    expect(await segwal('dump', dir)).toEqual({ code: 0, stdout: '', stderr: '' });
    const { wal, recovery } = await Wal.open({ dir, io: 'js' });
    await wal.close();
    expect(recovery.logId).toBe(logId);
  });

  it('a usage error is one line in the CLI\'s own words, naming the command once and pointing to its --help (exit 2)', async () => {
    const dir = tempDir();
    const cases: Array<[string[], string]> = [
      [['dump', dir, '--foo'], 'segwal dump: unknown option --foo (see segwal dump --help)'],
      [['stats', dir, '-x'], 'segwal stats: unknown option -x (see segwal stats --help)'],
      [['dump', dir, '--from'], 'segwal dump: --from needs a value (see segwal dump --help)'],
      [['dump', dir, '--from', '--to', '5'], 'segwal dump: --from needs a value (see segwal dump --help)'],
      [['inspect', dir, '--json=yes'], 'segwal inspect: --json takes no value (see segwal inspect --help)'],
      [['inspect'], 'segwal inspect: expected one log directory, got none (see segwal inspect --help)'],
      [['verify', dir, 'second-dir'], `segwal verify: expected one log directory, got 2: ${dir}, second-dir (see segwal verify --help)`],
      [['dump', dir, '--from', 'ten'], 'segwal dump: --from takes an LSN (an integer from 1 to 2^53-1), not ten (see segwal dump --help)'],
      [['explode', dir], 'segwal: unknown command "explode" (see segwal --help)'],
      [['--bogus'], 'segwal: unknown option --bogus (see segwal --help)'],
    ];
    for (const [args, message] of cases) expect(await segwal(...args), args.join(' ')).toEqual({ code: 2, stdout: '', stderr: `${message}\n` });
  });

  it('--version prints the version in package.json (exit 0)', async () => {
    const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(await segwal('--version')).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
    expect((await segwal('--help')).stdout).toContain('segwal --version');
  });

  it('says one of a thing in the singular: 1 segment, 1 record, a torn tail of 1 byte', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', sync: 'none' });
    wal.checkpointMarker(0);
    await wal.close();
    const [row] = JSON.parse((await segwal('inspect', dir, '--json')).stdout).segments;
    const dataEnd = row.bytes - row.preallocatedTail;
    // One stray byte right after the record, inside the preallocated rest of the segment.
    const fd = fs.openSync(path.join(dir, segmentNames(dir)[0]!), 'r+');
    fs.writeSync(fd, Buffer.from([7]), 0, 1, dataEnd);
    fs.closeSync(fd);
    const verify = await segwal('verify', dir);
    expect(verify.stdout).toMatch(/^ok: 1 segment, 1 record, LSN 1\.\.1, checked as open/);
    expect(verify.stdout).toContain(`torn tail in segment 1 at offset ${dataEnd} (1 byte): `);
    const inspect = await segwal('inspect', dir);
    expect(inspect.stdout).toMatch(/ 1 segment\n/);
    expect(inspect.stdout).toContain(`torn tail at offset ${dataEnd} (1 byte): `);
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
    const inspectText = (await segwal('inspect', dir)).stdout;
    expect(inspectText).toContain('\nproblem 1: damage in a segment that is not the last: WAL_CRC_MISMATCH');
    expect(inspectText).not.toMatch(/damage: damage/);
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
    // dump --tx naming that truncated TxBegin is not refused: it prints the records kept.
    const kept = await segwal('dump', dir, '--tx', String(early.beginLsn), '--payload', 'none');
    expect(kept.code).toBe(0);
    expect(kept.stdout.trim().split('\n').map((line) => JSON.parse(line).lsn)).toEqual([lateLsn, lateLsn + 1]);
  });

  it('verify --checkpoint-lsn beyond the last LSN is a usage error naming it, as open refuses that fence; marker is the default', async () => {
    const { dir } = await sampleLog(); // LSN 1..99, a Checkpoint naming snapshot 6
    expect(SAMPLE_LSNS.at(-1)).toBe(99);
    expect(await segwal('verify', dir, '--checkpoint-lsn', '100')).toEqual({
      code: 2,
      stdout: '',
      stderr:
        'segwal verify: --checkpoint-lsn 100 is beyond the end of the log (its last LSN is 99): open refuses that fence, since a reopen ' +
        'with it would not replay the next commit (LSN 100); give the fence of the snapshot this log continues (see segwal verify --help)\n',
    });
    await expect(Wal.open({ dir, io: 'js', checkpointLsn: 100 })).rejects.toMatchObject({ code: 'WAL_INVALID_OPTIONS', message: expect.stringContaining('its last LSN is 99') });
    expect((await segwal('verify', dir, '--checkpoint-lsn', '99')).code).toBe(0);
    const byDefault = JSON.parse((await segwal('verify', dir, '--json')).stdout);
    expect(byDefault).toMatchObject({ ok: true, checkpointLsn: 6 });
    expect(JSON.parse((await segwal('verify', dir, '--checkpoint-lsn', 'marker', '--json')).stdout)).toEqual(byDefault);
    expect((await segwal('verify', dir, '--checkpoint-lsn', 'latest')).stderr).toBe(
      'segwal verify: --checkpoint-lsn takes an LSN (an integer from 0 to 2^53-1) or marker, not latest (see segwal verify --help)\n',
    );
    // A log with no record takes any fence: open starts its LSNs above it.
    const empty = tempDir();
    await (await Wal.open({ dir: empty, io: 'js' })).wal.close();
    expect(await segwal('verify', empty, '--checkpoint-lsn', '1000')).toEqual({
      code: 0,
      stdout: 'ok: 1 segment, 0 records, checked as open with checkpointLsn 1000 checks them\n',
      stderr: '',
    });
    await (await Wal.open({ dir: empty, io: 'js', checkpointLsn: 1000 })).wal.close();
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
    // --payload none leaves the data fields out.
    const none = JSON.parse((await segwal('dump', dir, '--from', '2', '--to', '2', '--payload', 'none')).stdout);
    expect(none).toEqual({ lsn: 3, kind: 'Commit', txBeginLsn: 1, segmentId: 1, offset: 32 });
    const noPayload = JSON.parse((await segwal('dump', dir, '--tx', String(openBegin), '--kind', 'mutation', '--payload', 'none')).stdout);
    expect(Object.keys(noPayload)).toEqual(['lsn', 'kind', 'txBeginLsn', 'segmentId', 'offset']);
    // --tx with a --from past its TxBegin: the transaction's later records.
    const later = await segwal('dump', dir, '--tx', String(openBegin), '--from', String(openBegin + 1));
    expect(later.code).toBe(0);
    expect(later.stdout.trim().split('\n').map((line) => JSON.parse(line).lsn)).toEqual([openBegin + 1]);
  });

  it('dump refuses --from above --to, --tx above --to, and a --tx where no transaction begins (exit 2, nothing printed)', async () => {
    const { dir, multiStepBegin } = await sampleLog();
    const refused = (message: string) => ({ code: 2, stdout: '', stderr: `segwal dump: ${message} (see segwal dump --help)\n` });
    expect(await segwal('dump', dir, '--from', '10', '--to', '5')).toEqual(refused('--from 10 is above --to 5'));
    expect(await segwal('dump', dir, '--tx', '7', '--to', '5')).toEqual(refused('--tx 7 is above --to 5'));
    expect(await segwal('dump', dir, '--tx', '2')).toEqual(refused('--tx 2 is inside a Commit record (LSN 1..3); its transaction begins at LSN 1'));
    expect(await segwal('dump', dir, '--tx', '6', '--from', '50')).toEqual(refused('--tx 6 is inside a Commit record (LSN 4..6); its transaction begins at LSN 4'));
    const batch = multiStepBegin + 1;
    expect(await segwal('dump', dir, '--tx', String(batch))).toEqual(refused(`--tx ${batch} names a MutationBatch record, not a TxBegin`));
    expect(await segwal('dump', dir, '--tx', String(batch + 1), '--from', '200')).toEqual(refused(`--tx ${batch + 1} names a TxCommit record, not a TxBegin`));
    expect(await segwal('dump', dir, '--tx', '1000')).toEqual(refused('--tx 1000 names no record: the log ends before LSN 1000'));
  });

  it('dump --tx prints the records of that transaction, not a Checkpoint whose snapshot LSN is the same number', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', sync: 'none' });
    const { beginLsn } = (await wal.commit([Buffer.from('one')]))!;
    wal.checkpointMarker(beginLsn);
    await wal.close();
    const { code, stdout } = await segwal('dump', dir, '--tx', String(beginLsn));
    expect(code).toBe(0);
    expect(stdout.trim().split('\n').map((line) => JSON.parse(line).kind)).toEqual(['Commit']);
  });

  it('stats on a damaged log says where its counts stopped at the damage and where they resume', async () => {
    const { dir } = await sampleLog();
    const names = segmentNames(dir);
    const ids = names.map((name) => Number.parseInt(name, 10));
    const rows = JSON.parse((await segwal('inspect', dir, '--json')).stdout).segments as Array<{ bytes: number; preallocatedTail: number }>;
    const dataEnds = rows.map((row) => row.bytes - row.preallocatedTail);
    const before = JSON.parse((await segwal('stats', dir, '--json')).stdout);
    expect(before.bytes.inRecords).toBe(dataEnds.reduce((sum, end) => sum + end - 32, 0));
    const damage = (name: string, frameAt: (bytes: Buffer) => number) => {
      const file = path.join(dir, name);
      const bytes = fs.readFileSync(file);
      const at = frameAt(bytes);
      bytes[at + 10] = bytes[at + 10]! ^ 0x55; // inside that frame, with valid frames after it
      fs.writeFileSync(file, bytes);
      return at;
    };
    const second = damage(names[1]!, (bytes) => 32 + bytes.readUInt32LE(32)); // the segment's second frame
    const first = damage(names.at(-1)!, () => 32); // the last segment's first frame
    const { code, stdout } = await segwal('stats', dir);
    expect(code).toBe(1);
    const lines = stdout.split('\n');
    expect(lines.filter((line) => line.startsWith('stopped at'))).toEqual([
      `stopped at    damage in segment ${ids[1]}, offset ${second}: the counts leave out the rest of segment ${ids[1]} and resume at segment ${ids[2]}`,
      `stopped at    damage in segment ${ids.at(-1)}, offset ${first}: the counts leave out the rest of segment ${ids.at(-1)}`,
    ]);
    expect(lines.filter((line) => line.startsWith('problem       '))).toEqual([
      expect.stringMatching(/^problem {7}damage in a segment that is not the last: WAL_CRC_MISMATCH/),
      expect.stringMatching(/^problem {7}damage in the last segment with valid frames after it: /),
    ]);
    expect(stdout).not.toMatch(/damage +damage/);
    // The bytes in records stop at the damage too.
    const after = JSON.parse((await segwal('stats', dir, '--json')).stdout);
    expect(after.bytes.inRecords).toBe(before.bytes.inRecords - (dataEnds[1]! - second) - (dataEnds.at(-1)! - first));
  });

  it('stats: records by kind, transactions committed / aborted / open, LSN range, oldest and newest segment', async () => {
    const { dir } = await sampleLog();
    const names = segmentNames(dir);
    const stats = JSON.parse((await segwal('stats', dir, '--json')).stdout);
    expect(stats.recordsByKind).toEqual({ Commit: 30, TxBegin: 3, MutationBatch: 1, TxCommit: 1, TxAbort: 1, Mutation: 2, Checkpoint: 1, Replicated: 0 });
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

  it('a replica: dump prints each Replicated record with its events and stream sequence, stats counts them, inspect says it is a replica', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, replica: true });
    await wal.appendReplicated({ beginLsn: 3, commitLsn: 5, events: [Buffer.from('first'), Buffer.from([0xff])] }, 7);
    await wal.appendReplicated({ beginLsn: 9, commitLsn: 9, events: [] }, 8);
    await wal.close();
    const dumped = (await segwal('dump', dir)).stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(dumped).toEqual([
      expect.objectContaining({ lsn: 5, kind: 'Replicated', txBeginLsn: 3, streamSeq: 7, events: [{ encoding: 'utf8', data: 'first' }, { encoding: 'base64', data: '/w==' }] }),
      expect.objectContaining({ lsn: 9, kind: 'Replicated', txBeginLsn: 9, streamSeq: 8, events: [] }),
    ]);
    const bare = JSON.parse((await segwal('dump', dir, '--kind', 'replicated', '--to', '5', '--payload', 'none')).stdout);
    expect(Object.keys(bare)).toEqual(['lsn', 'kind', 'txBeginLsn', 'segmentId', 'offset', 'streamSeq']);
    const stats = await segwal('stats', dir);
    expect(stats.stdout).toMatch(/^records {7}2 \(Replicated 2\)\nevents {8}2\ntransactions {2}2 committed, 0 aborted, 0 open at end\n/);
    const inspect = await segwal('inspect', dir);
    expect(inspect.stdout.split('\n')[0]).toMatch(/^log id [0-9a-f]+ \(a replica: /);
    expect(JSON.parse((await segwal('inspect', dir, '--json')).stdout).segments[0]).toMatchObject({ replica: true });
    expect((await segwal('verify', dir)).code).toBe(0);
  });
});
