import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Wal, readTransactions, readWal, replayDir } from '../src/index.js';
import { scanLog } from '../src/cli/scan-log.js';
import { BACKENDS } from './helpers/backends.js';
import { segmentNames, tempDir } from './helpers/temp-dir.js';

/*
 * A refused log leaves no file open. The full fuzz run (34,000 damaged logs
 * per base log) ran out of file descriptors (EMFILE) after 19,118 cases: every
 * open refused for damage in a segment that is not the last, or for a bad
 * header, kept that segment's file open. Each case below is refused a hundred
 * times; the process must hold as many descriptors after as before.
 */

const ROUNDS = 100;

function openDescriptors(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** A log of several 1 KiB segments, the JSON events of 30 commits. */
async function baseLog(): Promise<{ dir: string; names: string[] }> {
  const dir = tempDir();
  const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 1024, sync: 'none' });
  for (let i = 0; i < 30; i++) await wal.commit([Buffer.from(JSON.stringify({ i, pad: 'x'.repeat(90) }))]);
  await wal.close();
  return { dir, names: segmentNames(dir) };
}

function flipByte(file: string, offset: number): void {
  const bytes = fs.readFileSync(file);
  bytes[offset] = bytes[offset]! ^ 0x55;
  fs.writeFileSync(file, bytes);
}

const DAMAGE: Record<string, (dir: string, names: string[]) => void> = {
  'a flipped byte in a segment that is not the last': (dir, names) => flipByte(path.join(dir, names[1]!), 60),
  'a bad header on a segment that is not the last': (dir, names) => flipByte(path.join(dir, names[1]!), 3),
  'a bad header on the last segment': (dir, names) => flipByte(path.join(dir, names.at(-1)!), 3),
};

/** Runs `refuse` ROUNDS times on a fresh copy of the damaged log; each must reject. Returns the descriptors gained. */
async function descriptorsLeft(base: { dir: string; names: string[] }, damage: (dir: string, names: string[]) => void, refuse: (dir: string) => Promise<unknown>) {
  const before = openDescriptors();
  for (let i = 0; i < ROUNDS; i++) {
    const dir = tempDir();
    fs.cpSync(base.dir, dir, { recursive: true });
    damage(dir, base.names);
    await expect(refuse(dir)).rejects.toMatchObject({ code: expect.stringMatching(/^WAL_/) });
  }
  return openDescriptors() - before;
}

async function drain(iterable: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of iterable);
}

describe.each(BACKENDS)('a refused log leaves no file open, on the $name backend', ({ name }) => {
  const io = name;
  it.each(Object.keys(DAMAGE))('Wal.open, replayDir, readWal, readTransactions: %s', async (damage) => {
    const base = await baseLog();
    const refusals: Array<(dir: string) => Promise<unknown>> = [
      (dir) => Wal.open({ dir, io }),
      (dir) => replayDir(dir, { io }),
      (dir) => drain(readWal(dir, { io })),
      (dir) => drain(readTransactions(dir, { io, fromLsn: 1 })),
    ];
    for (const refuse of refusals) expect(await descriptorsLeft(base, DAMAGE[damage]!, refuse)).toBe(0);
  });

  it('refusals from past the validator: a throwing onReplay, an event the codec cannot decode, a record whose TxBegin is gone', async () => {
    const base = await baseLog();
    const untouched = () => undefined;
    const picky = { name: 'picky', encode: (event: Uint8Array) => event, decode: (): never => { throw new Error('undecodable'); } };
    const throwing = () => {
      throw new Error('handler');
    };
    expect(await descriptorsLeft(base, untouched, (dir) => Wal.open({ dir, io, onReplay: throwing }))).toBe(0);
    expect(await descriptorsLeft(base, untouched, (dir) => replayDir(dir, { io, onReplay: throwing }))).toBe(0);
    expect(await descriptorsLeft(base, untouched, (dir) => drain(readTransactions(dir, { io, fromLsn: 1, codec: picky })))).toBe(0);
    // A transaction begun in the first segment, committed in a later one; the first segment gone, a fence of 0 refuses it.
    const spanning = tempDir();
    const { wal } = await Wal.open({ dir: spanning, io: 'js', segmentBytes: 1024, sync: 'none' });
    const early = wal.begin();
    early.append(Buffer.from('begun early'));
    for (let i = 0; i < 20; i++) await wal.commit([Buffer.alloc(120, i)]);
    early.append(Buffer.from('still going'));
    await early.commit();
    await wal.close();
    const names = segmentNames(spanning);
    const firstGone = (dir: string) => fs.rmSync(path.join(dir, names[0]!));
    expect(await descriptorsLeft({ dir: spanning, names }, firstGone, (dir) => Wal.open({ dir, io, checkpointLsn: 0 }))).toBe(0);
  });
});

it('the CLI scan (inspect, verify, stats) leaves no file open on a damaged log', async () => {
  const base = await baseLog();
  for (const damage of Object.values(DAMAGE)) {
    const before = openDescriptors();
    for (let i = 0; i < ROUNDS; i++) {
      const dir = tempDir();
      fs.cpSync(base.dir, dir, { recursive: true });
      damage(dir, base.names);
      const scan = await scanLog(dir);
      expect(scan.problems.length).toBeGreaterThan(0);
    }
    expect(openDescriptors() - before).toBe(0);
  }
});
