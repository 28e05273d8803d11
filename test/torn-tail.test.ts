import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Wal } from '../src/index.js';
import { BACKENDS } from './helpers/backends.js';
import { events, texts } from './helpers/bytes.js';
import { segmentPath } from './helpers/craft.js';
import { tempDir } from './helpers/temp-dir.js';

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
    expect(offsets.length).toBe(9);
    const dataEnd = offsets[8]! + fs.readFileSync(file).readUInt32LE(offsets[8]!);
    tear(file, offsets);

    const { wal, events: replayed, recovery } = await Wal.open({ dir, io: io(), preallocate });
    const cutAt = label.startsWith('garbage') ? dataEnd : offsets[8]!;
    expect(recovery.tornTail).toMatchObject({ segmentId: 1, offset: cutAt, discardedBytes: expect.any(Number), cause: expect.any(String) });
    expect(recovery.tornTail!.discardedBytes).toBeGreaterThan(0);
    expect(texts(replayed)).toEqual(label.startsWith('garbage') ? ['one', 'two', 'three'] : ['one', 'two']);
    await wal.commit(events('four'));
    await wal.close();

    const { wal: reopened, events: all, recovery: clean } = await Wal.open({ dir, io: io(), preallocate });
    expect(clean.tornTail).toBeNull();
    expect(texts(all).at(-1)).toBe('four');
    await reopened.close();
  });

  it('a last segment whose header is damaged but which holds records is refused, not replaced', async () => {
    const dir = tempDir();
    const file = await logOfThreeCommits(dir, io(), false);
    flipByte(file, 14);
    await expect(Wal.open({ dir, io: io() })).rejects.toMatchObject({ code: 'WAL_BAD_SEGMENT_HEADER' });
    expect(frameOffsets(fs.readFileSync(file)).length).toBe(9);
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
