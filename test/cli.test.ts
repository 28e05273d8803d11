import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Wal } from '../src/index.js';
import { ROOT } from './helpers/child.js';
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

/** A log of several segments: 30 commits, one aborted and one open transaction, a Checkpoint. */
async function sampleLog(options: { keepOpen?: boolean } = {}) {
  const dir = tempDir();
  const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 1024, sync: 'none' });
  for (let i = 0; i < 30; i++) await wal.commit([Buffer.from(`event ${i} ${'x'.repeat(60)}`)]);
  const aborted = wal.begin();
  aborted.append(Buffer.from('aborted'));
  aborted.abort();
  const open = wal.begin();
  open.append(Buffer.from([0xff, 0x00, 0xfe]));
  wal.checkpointMarker(6);
  await wal.flush();
  if (options.keepOpen !== true) await wal.close();
  return { dir, wal, openBegin: open.beginLsn, abortedBegin: aborted.beginLsn };
}

describe('the segwal CLI', () => {
  it('--help works for the bin and every command (exit 0); bad usage exits 2', async () => {
    expect((await segwal('--help')).stdout).toMatch(/inspect.*\n.*verify.*\n.*dump.*\n.*stats/);
    for (const command of ['inspect', 'verify', 'dump', 'stats']) {
      const { code, stdout } = await segwal(command, '--help');
      expect(code, command).toBe(0);
      expect(stdout, command).toContain(`segwal ${command} <dir>`);
    }
    expect((await segwal()).code).toBe(2);
    expect((await segwal('explode', '/tmp')).code).toBe(2);
    expect((await segwal('inspect')).code).toBe(2);
    expect((await segwal('dump', tempDir(), '--from', 'ten')).stderr).toContain('--from takes an LSN');
    expect((await segwal('dump', tempDir(), '--kind', 'Nope')).code).toBe(2);
    expect((await segwal('stats', tempDir(), '--bogus')).code).toBe(2);
    expect((await segwal('inspect', path.join(tempDir(), 'missing'))).code).toBe(2);
  });

  it('inspect: one row per segment and the totals; --json has the same rows', async () => {
    const { dir } = await sampleLog();
    const names = segmentNames(dir);
    const text = await segwal('inspect', dir);
    expect(text.code).toBe(0);
    expect(text.stdout.trim().split('\n').length).toBe(1 + names.length + 1);
    expect(text.stdout).toMatch(new RegExp(`total .* ${names.length} segments`));
    const { stdout } = await segwal('inspect', dir, '--json');
    const report = JSON.parse(stdout);
    expect(report.segments.map((row: { id: number }) => row.id)).toEqual(names.map((name) => Number.parseInt(name, 10)));
    expect(report.segments[0]).toMatchObject({ baseLsn: 1, sealed: true, state: 'sealed' });
    expect(report.segments.at(-1)).toMatchObject({ sealed: false, state: 'active' });
    const records = report.segments.reduce((sum: number, row: { records: number }) => sum + row.records, 0);
    expect(report.totals.records).toBe(records);
    expect(records).toBe(30 * 3 + 3 + 2 + 1);
    const sizes = names.reduce((sum, name) => sum + fs.statSync(path.join(dir, name)).size, 0);
    expect(report.totals.bytes).toBe(sizes);
  });

  it('verify: exit 0 on a good log; exit 1 naming file, offset and LSN on damage in a segment that is not the last', async () => {
    const { dir } = await sampleLog();
    const good = await segwal('verify', dir);
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/^ok: \d+ segments/);
    const second = path.join(dir, segmentNames(dir)[1]!);
    const bytes = fs.readFileSync(second);
    bytes[32 + 10] = bytes[32 + 10]! ^ 0x55; // inside the first frame after the header
    fs.writeFileSync(second, bytes);
    const damaged = await segwal('verify', dir);
    expect(damaged.code).toBe(1);
    expect(damaged.stdout).toContain('DAMAGED');
    expect(damaged.stdout).toContain(`file   ${second}`);
    expect(damaged.stdout).toContain('offset 32');
    expect(damaged.stdout).toMatch(/LSN +\d+/);
    const json = JSON.parse((await segwal('verify', dir, '--json')).stdout);
    expect(json.damage).toMatchObject({ code: 'WAL_MALFORMED', file: second, offset: 32, lsn: expect.any(Number) });
    expect((await segwal('stats', dir)).code).toBe(1);
  });

  it('verify reports a torn tail in the last segment as what open would cut, and exits 0', async () => {
    const { dir } = await sampleLog();
    const last = path.join(dir, segmentNames(dir).at(-1)!);
    fs.appendFileSync(last, Buffer.from([9, 9, 9]));
    const { code, stdout } = await segwal('verify', dir);
    expect(code).toBe(0);
    expect(stdout).toMatch(/torn tail in segment \d+ at offset \d+ \(\d+ bytes\).*open would cut it/);
  });

  it('dump: NDJSON, one record a line, with --from/--to/--kind/--tx and payload modes', async () => {
    const { dir, openBegin, abortedBegin } = await sampleLog();
    const all = (await segwal('dump', dir)).stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(all.map((record) => record.lsn)).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    expect(all[1]).toMatchObject({ kind: 'MutationBatch', txBeginLsn: 1, events: [{ encoding: 'utf8', data: expect.stringMatching(/^event 0 /) }] });
    const ranged = (await segwal('dump', dir, '--from', '4', '--to', '6')).stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(ranged.map((record) => record.kind)).toEqual(['TxBegin', 'MutationBatch', 'TxCommit']);
    const aborts = (await segwal('dump', dir, '--kind', 'TxAbort')).stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(aborts).toEqual([expect.objectContaining({ kind: 'TxAbort', txBeginLsn: abortedBegin })]);
    const tx = (await segwal('dump', dir, '--tx', String(openBegin))).stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(tx.map((record) => record.kind)).toEqual(['TxBegin', 'Mutation']);
    expect(tx[1].payload).toEqual({ encoding: 'base64', data: Buffer.from([0xff, 0x00, 0xfe]).toString('base64') });
    const hex = JSON.parse((await segwal('dump', dir, '--tx', String(openBegin), '--kind', 'mutation', '--payload', 'hex')).stdout);
    expect(hex.payload).toEqual({ encoding: 'hex', data: 'ff00fe' });
    const none = JSON.parse((await segwal('dump', dir, '--from', '2', '--to', '2', '--payload', 'none')).stdout);
    expect(none.events).toEqual([null]);
  });

  it('stats: records by kind, transactions committed / aborted / open, LSN range, oldest and newest segment', async () => {
    const { dir } = await sampleLog();
    const names = segmentNames(dir);
    const stats = JSON.parse((await segwal('stats', dir, '--json')).stdout);
    expect(stats.recordsByKind).toMatchObject({ TxBegin: 32, MutationBatch: 30, TxCommit: 30, TxAbort: 1, Mutation: 2, Checkpoint: 1 });
    expect(stats.transactions).toEqual({ committed: 30, aborted: 1, openAtEnd: 1 });
    expect(stats.events).toBe(32);
    expect(stats.lsnRange).toEqual({ first: 1, last: 96 });
    expect(stats.segments).toEqual({ count: names.length, oldest: 1, newest: names.length });
    expect((await segwal('stats', dir)).stdout).toContain('30 committed, 1 aborted, 1 open at end');
  });

  it('works on a log a live Wal holds open and is writing, and changes no file', async () => {
    const { dir, wal } = await sampleLog({ keepOpen: true });
    const before = snapshotFiles(dir);
    for (const args of [['inspect'], ['verify'], ['dump'], ['stats']]) {
      const { code } = await segwal(...args, dir);
      expect(code, args[0]).toBe(0);
    }
    expect(snapshotFiles(dir)).toEqual(before);
    const writing = (async () => {
      for (let i = 0; i < 50; i++) await wal.commit([Buffer.alloc(80, i)]);
    })();
    const [dump] = await Promise.all([segwal('dump', dir, '--payload', 'none'), writing]);
    expect(dump.code).toBe(0);
    const lsns = dump.stdout.trim().split('\n').map((line) => JSON.parse(line).lsn);
    expect(lsns).toEqual(Array.from({ length: lsns.length }, (_, i) => i + 1));
    await wal.close();
  });
});
