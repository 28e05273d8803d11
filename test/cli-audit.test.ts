import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Wal } from '../src/index.js';
import { runCli as segwal } from './helpers/cli.js';
import { segmentNames, snapshotFiles, tempDir } from './helpers/temp-dir.js';

/*
 * What the read-only commands may claim about a log: never more than they
 * checked, and never "fine" for a log that open refuses or that ends in
 * damage hiding valid records.
 */

/** A log of `commits` commits of one event each (one Commit record each), in one segment, closed. */
async function smallLog(commits: number): Promise<string> {
  const dir = tempDir();
  const { wal } = await Wal.open({ dir, io: 'js', sync: 'none' });
  for (let i = 0; i < commits; i++) await wal.commit([Buffer.from(`event ${i}`)]);
  await wal.close();
  return dir;
}

/** The offsets of the frames of a segment file, from its header to its data's end. */
function frameOffsets(bytes: Buffer): number[] {
  const offsets: number[] = [];
  for (let at = 32; at + 4 <= bytes.length; ) {
    const length = bytes.readUInt32LE(at);
    if (length === 0) break;
    offsets.push(at);
    at += length;
  }
  return offsets;
}

describe('segwal audit: what the read-only commands claim', () => {
  it('a damaged log identity file, which open refuses, is damage for verify and inspect (exit 1, naming the file), and no file changes', async () => {
    const dir = await smallLog(3);
    const idFile = path.join(dir, '.segwal.id');
    fs.writeFileSync(idFile, 'not a log id\n');
    await expect(Wal.open({ dir, io: 'js' })).rejects.toMatchObject({ code: 'WAL_MALFORMED', file: idFile });
    const before = snapshotFiles(dir);

    const verify = await segwal('verify', dir);
    expect(verify.code, verify.stdout + verify.stderr).toBe(1);
    expect(verify.stdout).toMatch(/^DAMAGED: 1 problem;/);
    expect(verify.stdout).not.toMatch(/^ok/m);
    expect(verify.stdout).toContain(`file   ${idFile}\n`);
    const json = JSON.parse((await segwal('verify', dir, '--json')).stdout);
    expect(json.ok).toBe(false);
    expect(json.problems).toEqual([expect.objectContaining({ code: 'WAL_MALFORMED', file: idFile })]);

    // inspect still describes the segments, and lists the problem (exit 1, as for damage, not 2 as for an I/O error).
    const inspect = await segwal('inspect', dir);
    expect(inspect.code, inspect.stdout + inspect.stderr).toBe(1);
    expect(inspect.stdout).toMatch(/ 1 segment\n/);
    expect(inspect.stdout).toContain(`\nproblem 1: the log's identity file does not hold a log id`);
    const inspectJson = JSON.parse((await segwal('inspect', dir, '--json')).stdout);
    expect(inspectJson).toMatchObject({ logId: null, totals: { segments: 1, records: 3 } });
    expect(inspectJson.problems).toEqual([expect.objectContaining({ code: 'WAL_MALFORMED', file: idFile })]);

    expect(snapshotFiles(dir)).toEqual(before);
  });

  it('dump does not end quietly when valid frames follow damage in the last segment: it names the damage on stderr and exits 1, as verify does', async () => {
    const dir = await smallLog(6);
    const file = path.join(dir, segmentNames(dir)[0]!);
    const bytes = fs.readFileSync(file);
    const offsets = frameOffsets(bytes);
    expect(offsets).toHaveLength(6);
    bytes[offsets[2]! + 10] = bytes[offsets[2]! + 10]! ^ 0x55; // inside the third frame; three valid frames follow it
    fs.writeFileSync(file, bytes);
    const before = snapshotFiles(dir);

    expect((await segwal('verify', dir)).code).toBe(1);
    const dump = await segwal('dump', dir, '--payload', 'none');
    expect(dump.code, dump.stderr).toBe(1);
    // The records before the damage, then the damage.
    expect(dump.stdout.trim().split('\n').map((line) => JSON.parse(line).lsn)).toEqual([3, 6]);
    expect(dump.stderr).toMatch(/^damage: /);
    expect(JSON.parse(dump.stderr.replace(/^damage: /, ''))).toMatchObject({ code: 'WAL_MALFORMED', file, offset: offsets[2] });
    expect(dump.stderr).toContain('valid frames (LSN 10..18) follow the damage');
    expect(snapshotFiles(dir)).toEqual(before);
  });

  it('dump still ends quietly (exit 0) at a plain torn tail, and where --to stops it before the damage', async () => {
    const dir = await smallLog(6);
    const file = path.join(dir, segmentNames(dir)[0]!);
    const offsets = frameOffsets(fs.readFileSync(file));
    // A torn write: the last frame cut short, nothing valid after it.
    fs.truncateSync(file, offsets[5]! + 10);
    const torn = await segwal('dump', dir, '--payload', 'none');
    expect(torn).toMatchObject({ code: 0, stderr: '' });
    expect(torn.stdout.trim().split('\n')).toHaveLength(5);

    const damaged = await smallLog(6);
    const damagedFile = path.join(damaged, segmentNames(damaged)[0]!);
    const bytes = fs.readFileSync(damagedFile);
    bytes[offsets[4]! + 10] = bytes[offsets[4]! + 10]! ^ 0x55;
    fs.writeFileSync(damagedFile, bytes);
    // --to stops reading before the damage: nothing it read is damaged.
    expect(await segwal('dump', damaged, '--to', '6', '--payload', 'none')).toMatchObject({ code: 0, stderr: '' });
  });

  it('ship on a log that open refuses (a damaged identity file) exits 1, as damage, not 2 as for what may pass; before connecting, changing nothing', async () => {
    const dir = await smallLog(3);
    const idFile = path.join(dir, '.segwal.id');
    fs.writeFileSync(idFile, 'not a log id\n');
    const refused = await Wal.open({ dir, io: 'js' }).then(() => null, (error: Error & { code: string }) => error);
    expect(refused).toMatchObject({ code: 'WAL_MALFORMED', file: idFile });
    const before = snapshotFiles(dir);
    // No server listens on port 1: the refusal comes before anything connects.
    const run = await segwal('ship', dir, '--servers', 'nats://127.0.0.1:1', '--stream', 'audit');
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toBe(`segwal ship: WAL_MALFORMED: ${refused!.message}\n`);
    expect(snapshotFiles(dir)).toEqual(before);
  });
});
