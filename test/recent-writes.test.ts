import { describe, expect, it } from 'vitest';
import { Wal, replayDir, type CommittedTransaction } from '../src/index.js';
import type { WalIo } from '../src/io/types.js';
import { RecentWrites } from '../src/recent-writes.js';
import { BACKENDS } from './helpers/backends.js';
import { events, texts } from './helpers/bytes.js';
import { tempDir } from './helpers/temp-dir.js';

/** `io` counting its async reads and directory listings. */
function counting(io: WalIo): { io: WalIo; calls: { read: number; listDir: number } } {
  const calls = { read: 0, listDir: 0 };
  return {
    calls,
    io: {
      ...io,
      name: 'counting',
      async: {
        ...io.async,
        read: (...args) => {
          calls.read++;
          return io.async.read(...args);
        },
        listDir: (...args) => {
          calls.listDir++;
          return io.async.listDir(...args);
        },
      },
    },
  };
}

/** Reads `reader` into `into` in the background; resolves once it ends. */
async function drain(reader: AsyncIterable<CommittedTransaction<Buffer>>, into: Array<CommittedTransaction<Buffer>>): Promise<void> {
  for await (const tx of reader) into.push(tx);
}

const shape = (tx: { beginLsn: number; commitLsn: number; events: Buffer[] }) => ({ beginLsn: tx.beginLsn, commitLsn: tx.commitLsn, events: texts(tx.events) });

describe.each(BACKENDS)('an in-process reader on the $name backend', ({ io }) => {
  it('takes what was just written from memory: no read of the file and no directory listing per commit', async () => {
    const dir = tempDir();
    const observed = counting(io());
    const { wal } = await Wal.open({ dir, io: observed.io, sync: 'per-commit' });
    await wal.commit(events('before the reader'));
    const stop = new AbortController();
    const seen: Array<CommittedTransaction<Buffer>> = [];
    const reading = drain(wal.readTransactions({ fromLsn: 1, signal: stop.signal }), seen);
    await expect.poll(() => seen.length, { timeout: 5000, interval: 2 }).toBe(1);
    const before = { ...observed.calls };
    for (let i = 0; i < 50; i++) {
      await wal.commit(events(`commit ${i}`));
      await expect.poll(() => seen.length, { timeout: 5000, interval: 1 }).toBe(i + 2);
    }
    expect(observed.calls).toEqual(before);
    expect(seen.slice(1).map((tx) => texts(tx.events)[0])).toEqual(Array.from({ length: 50 }, (_, i) => `commit ${i}`));
    stop.abort();
    await reading;
    await wal.close();
  });

  it('yields what a replay has across rotations, a commit larger than the bytes kept, readers that start behind and stop early', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io(), segmentBytes: 6 * 1024 * 1024, sync: { mode: 'group', intervalMs: 1 } });
    const commitSome = async (count: number, tag: string) => {
      for (let i = 0; i < count; i++) await wal.commit([Buffer.alloc(512 + ((i * 977) % 3000), `${tag} ${i} `)]);
    };
    await commitSome(200, 'before');
    const stop = new AbortController();
    const whole: Array<CommittedTransaction<Buffer>> = [];
    const early = new AbortController();
    const partial: Array<CommittedTransaction<Buffer>> = [];
    const readers = [drain(wal.readTransactions({ fromLsn: 1, signal: stop.signal }), whole), drain(wal.readTransactions({ fromLsn: 1, signal: early.signal }), partial)];
    await commitSome(1500, 'small');
    early.abort();
    await wal.commit([Buffer.alloc(5 * 1024 * 1024, 'larger than the bytes kept')]);
    await commitSome(2500, 'rotating');
    await wal.commit([Buffer.alloc(5 * 1024 * 1024, 'and again')]);
    await commitSome(50, 'after');
    await wal.sync();
    const last = wal.durableLsn;
    await expect.poll(() => whole.at(-1)?.commitLsn, { timeout: 10_000, interval: 5 }).toBe(last);
    // A reader that starts once every earlier one stopped.
    const later: Array<CommittedTransaction<Buffer>> = [];
    const laterStop = new AbortController();
    const laterReading = drain(wal.readTransactions({ fromLsn: 1, signal: laterStop.signal }), later);
    await commitSome(20, 'later');
    await wal.sync();
    await expect.poll(() => later.at(-1)?.commitLsn, { timeout: 10_000, interval: 5 }).toBe(wal.durableLsn);
    stop.abort();
    laterStop.abort();
    await Promise.all([...readers, laterReading]);
    await wal.close();

    const replayed: Array<ReturnType<typeof shape>> = [];
    await replayDir(dir, { checkpointLsn: 0, onReplay: (batch, tx) => void replayed.push(shape({ ...tx, events: batch })) });
    expect(replayed).toHaveLength(4272);
    expect(whole.map(shape)).toEqual(replayed);
    expect(later.map(shape)).toEqual(replayed);
    expect(partial.length).toBeGreaterThan(0);
    expect(partial.map(shape)).toEqual(replayed.slice(0, partial.length));
  });
});

describe('RecentWrites', () => {
  const bytes = (text: string) => Buffer.from(text);

  it('keeps nothing while no reader is attached, and lets go when the last one detaches', () => {
    const recent = new RecentWrites();
    recent.wrote(1, 32, bytes('unseen'));
    expect(recent.bytesFrom(1, 32)).toBeNull();
    recent.attach();
    recent.attach();
    recent.wrote(1, 38, bytes('seen'));
    expect(recent.bytesFrom(1, 38)?.toString()).toBe('seen');
    recent.detach();
    expect(recent.bytesFrom(1, 40)?.toString()).toBe('en');
    recent.detach();
    expect(recent.bytesFrom(1, 38)).toBeNull();
    expect(recent.mayHaveSegmentAfter(1)).toBe(true);
  });

  it('holds one run of one segment up to what is written; a gap, a new segment or a full buffer starts it again', () => {
    const recent = new RecentWrites();
    recent.attach();
    expect(recent.mayHaveSegmentAfter(5)).toBe(true);
    recent.wrote(1, 100, bytes('abc'));
    recent.wrote(1, 103, bytes('def'));
    expect(recent.bytesFrom(1, 100)?.toString()).toBe('abcdef');
    expect(recent.bytesFrom(1, 106)?.length).toBe(0);
    expect(recent.bytesFrom(1, 99)).toBeNull();
    expect(recent.bytesFrom(1, 107)).toBeNull();
    expect(recent.bytesFrom(2, 100)).toBeNull();
    expect(recent.mayHaveSegmentAfter(1)).toBe(false);
    expect(recent.mayHaveSegmentAfter(0)).toBe(true);
    recent.wrote(2, 32, bytes('next'));
    expect(recent.bytesFrom(1, 100)).toBeNull();
    expect(recent.bytesFrom(2, 32)?.toString()).toBe('next');
    expect(recent.mayHaveSegmentAfter(1)).toBe(true);
    recent.wrote(2, 40, bytes('after a gap'));
    expect(recent.bytesFrom(2, 32)).toBeNull();
    expect(recent.bytesFrom(2, 40)?.toString()).toBe('after a gap');
    const big = Buffer.alloc(3 * 1024 * 1024, 1);
    recent.wrote(2, 51, big);
    recent.wrote(2, 51 + big.length, big);
    expect(recent.bytesFrom(2, 51)).toBeNull();
    expect(recent.bytesFrom(2, 51 + big.length)?.equals(big)).toBe(true);
    recent.wrote(2, 51 + 2 * big.length, Buffer.alloc(5 * 1024 * 1024));
    expect(recent.bytesFrom(2, 51 + big.length)).toBeNull();
    expect(recent.bytesFrom(2, 51 + 2 * big.length)).toBeNull();
  });
});
