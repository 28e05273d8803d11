import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Wal } from '../src/index.js';
import { BACKENDS } from './helpers/backends.js';
import { events, texts } from './helpers/bytes.js';
import { runCli } from './helpers/cli.js';
import { segmentPath } from './helpers/craft.js';
import { segmentNames, tempDir } from './helpers/temp-dir.js';

/** Offsets of every frame in a segment, walking from the header to the zero length that ends the data. */
function frameOffsets(segment: Buffer): number[] {
  const offsets: number[] = [];
  for (let offset = 32; offset + 4 <= segment.length; ) {
    const length = segment.readUInt32LE(offset);
    if (length === 0) break;
    offsets.push(offset);
    offset += length;
  }
  return offsets;
}

/** Three commits: three Commit records, one frame each. */
async function logOfThreeCommits(dir: string, io: Parameters<typeof Wal.open>[0]['io'], preallocate: boolean) {
  const { wal } = await Wal.open({ dir, io, sync: 'per-commit', preallocate });
  for (const text of ['one', 'two', 'three']) await wal.commit(events(text));
  await wal.close();
  return segmentPath(dir, 1);
}

describe.each(BACKENDS)('a torn tail on the $name backend', ({ io }) => {
  it.each([
    ['a frame cut short at the end of the file', false, (file: string, at: number[]) => fs.truncateSync(file, at[at.length - 1]! + 10)],
    ['a bad CRC in the last frame', true, (file: string, at: number[]) => flipByte(file, at[at.length - 1]! + 6)],
    ['garbage after the last good frame', false, (file: string) => fs.appendFileSync(file, Buffer.from([1, 2, 3, 4, 5, 6, 7]))],
  ])('%s is cut at the last good frame, reported, writable afterwards, and gone on the next open', async (label, preallocate, tear) => {
    const dir = tempDir();
    const file = await logOfThreeCommits(dir, io(), preallocate);
    const offsets = frameOffsets(fs.readFileSync(file));
    expect(offsets.length).toBe(3);
    const dataEnd = offsets[2]! + fs.readFileSync(file).readUInt32LE(offsets[2]!);
    tear(file, offsets);

    const torn = fs.readFileSync(file);
    const { wal, events: replayed, recovery } = await Wal.open({ dir, io: io(), preallocate });
    const cutAt = label.startsWith('garbage') ? dataEnd : offsets[2]!;
    expect(recovery.tornTail).toMatchObject({ segmentId: 1, offset: cutAt, cause: expect.any(String), validFramesAfter: 0, lsnRangeAfter: null });
    const { discardedBytes, quarantineFile } = recovery.tornTail!;
    expect(discardedBytes).toBeGreaterThan(0);
    // The cut bytes are kept, byte for byte, and gone from the segment: only zeros follow the cut.
    expect(quarantineFile).toBe(`${dir}/0000000001.wal.quarantine-${cutAt}`);
    expect(fs.readFileSync(quarantineFile!)).toEqual(torn.subarray(cutAt, cutAt + discardedBytes));
    expect(torn.subarray(cutAt + discardedBytes).every((byte) => byte === 0)).toBe(true);
    expect(fs.readFileSync(file).subarray(cutAt).every((byte) => byte === 0)).toBe(true);
    expect(texts(replayed)).toEqual(label.startsWith('garbage') ? ['one', 'two', 'three'] : ['one', 'two']);
    await wal.commit(events('four'));
    await wal.close();

    const { wal: reopened, events: all, recovery: clean } = await Wal.open({ dir, io: io(), preallocate });
    expect(clean.tornTail).toBeNull();
    expect(texts(all).at(-1)).toBe('four');
    await reopened.close();
    expect(fs.existsSync(quarantineFile!)).toBe(true);
  });

  it('a last segment whose header is damaged but which holds records is refused, not replaced', async () => {
    const dir = tempDir();
    const file = await logOfThreeCommits(dir, io(), false);
    flipByte(file, 14);
    await expect(Wal.open({ dir, io: io() })).rejects.toMatchObject({ code: 'WAL_BAD_SEGMENT_HEADER' });
    expect(frameOffsets(fs.readFileSync(file)).length).toBe(3);
  });
});

function flipByte(file: string, at: number): void {
  const bytes = fs.readFileSync(file);
  bytes[at] = bytes[at]! ^ 0xff;
  fs.writeFileSync(file, bytes);
}

describe.each(BACKENDS)('a damaged sealed last segment on the $name backend', ({ io }) => {
  it('is refused as corruption (it was whole and fsync’d before sealing), not cut as a torn tail', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io(), segmentBytes: 1024 });
    for (let i = 0; i < 12; i++) await wal.commit([Buffer.alloc(100, i)]);
    await wal.close();
    // Leave only the sealed segment 1, as a crash right after sealing would, then damage it.
    const names = fs.readdirSync(dir).filter((name) => name.endsWith('.wal')).sort();
    for (const name of names.slice(1)) fs.rmSync(`${dir}/${name}`);
    const sealed = `${dir}/${names[0]}`;
    expect(fs.readFileSync(sealed).readUInt32LE(20) & 1).toBe(1);
    flipByte(sealed, frameOffsets(fs.readFileSync(sealed)).at(-1)! + 6);
    await expect(Wal.open({ dir, io: io() })).rejects.toMatchObject({ code: 'WAL_MALFORMED', message: /damage in a sealed segment/ });
    expect(fs.readdirSync(dir).filter((name) => name.endsWith('.wal'))).toEqual([names[0]]);
  });
});

/** The log: 12 commits of ~100 bytes in 1 KiB segments; the last segment holds four of them (LSN 25..36). */
async function logWithDamageMidSegment(dir: string, io: Parameters<typeof Wal.open>[0]['io']) {
  const { wal } = await Wal.open({ dir, io, segmentBytes: 1024, sync: 'per-commit' });
  for (let i = 0; i < 12; i++) await wal.commit([Buffer.from(`commit ${String(i).padStart(2, '0')} ${'c'.repeat(90)}`)]);
  await wal.close();
  const last = `${dir}/${segmentNames(dir).at(-1)!}`;
  const before = fs.readFileSync(last);
  flipByte(last, 100);
  return { last, before };
}

describe.each(BACKENDS)('damage followed by valid frames in the last segment on the $name backend', ({ io }) => {
  it("is cut by default ('cut'), reported with the frames and LSNs after it, and the cut bytes are kept in a quarantine file", async () => {
    const dir = tempDir();
    const { last, before } = await logWithDamageMidSegment(dir, io());
    const { wal, events: replayed, recovery } = await Wal.open({ dir, io: io() });
    const tail = recovery.tornTail!;
    expect(tail.offset).toBeLessThanOrEqual(100);
    expect(tail.validFramesAfter).toBeGreaterThan(0);
    // Byte 100 is in the segment's first Commit record (LSN 25..27): the frames after it start at LSN 28.
    expect(recovery.maxLsn).toBe(24);
    expect(tail.lsnRangeAfter).toEqual({ first: 28, last: 36 });
    expect(tail.cause).toMatch(/valid frames? \(LSN \d+\.\.36\) follow the damage/);
    expect(replayed.length).toBeLessThan(12);
    // Nothing that was on disk is lost: the segment up to the cut plus the quarantine file are the damaged bytes.
    const damaged = Buffer.from(before);
    damaged[100] = damaged[100]! ^ 0xff;
    expect(fs.readFileSync(tail.quarantineFile!)).toEqual(damaged.subarray(tail.offset, tail.offset + tail.discardedBytes));
    expect(fs.readFileSync(last).subarray(0, tail.offset)).toEqual(damaged.subarray(0, tail.offset));
    await wal.close();
  });

  it("with tailDamage: 'refuse' open throws WAL_MALFORMED naming file, offset and LSN, and changes nothing", async () => {
    const dir = tempDir();
    const { last } = await logWithDamageMidSegment(dir, io());
    const damaged = fs.readFileSync(last);
    const error = await Wal.open({ dir, io: io(), tailDamage: 'refuse' }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'WAL_MALFORMED', file: last, offset: expect.any(Number), lsn: expect.any(Number) });
    expect((error as Error).message).toMatch(/tailDamage: 'refuse'.*valid frames?.*\(file .*, offset \d+, LSN \d+\)/);
    expect(fs.readFileSync(last)).toEqual(damaged);
    expect(fs.readdirSync(dir).filter((name) => name.includes('quarantine'))).toEqual([]);
    // The lock was released: a default open (which cuts) works now.
    const { wal } = await Wal.open({ dir, io: io() });
    await wal.close();
  });

  it("with tailDamage: 'refuse' a plain torn tail (nothing valid after it) is still cut", async () => {
    const dir = tempDir();
    const file = await logOfThreeCommits(dir, io(), true);
    const offsets = frameOffsets(fs.readFileSync(file));
    flipByte(file, offsets.at(-1)! + 6);
    const { wal, recovery } = await Wal.open({ dir, io: io(), tailDamage: 'refuse' });
    expect(recovery.tornTail).toMatchObject({ offset: offsets.at(-1), validFramesAfter: 0 });
    await wal.close();
  });
});

describe('segwal verify and a damaged last segment', () => {
  it('exits 1 when valid frames follow damage in the last segment, and 0 with a note for a plain torn tail', async () => {
    const damaged = tempDir();
    await logWithDamageMidSegment(damaged, 'js');
    const refused = await runCli('verify', damaged);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/DAMAGED/);
    expect(refused.stdout).toMatch(/valid frames? \(LSN \d+\.\.36\) follow the damage/);

    const torn = tempDir();
    const file = await logOfThreeCommits(torn, 'js', false);
    fs.truncateSync(file, fs.statSync(file).size - 10);
    const plain = await runCli('verify', torn);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^ok: .*\ntorn tail in segment 1 at offset \d+/);
  });
});
