import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Wal, WalError, codecs, readTransactions, replayDir, type CommittedTransaction, type Tx } from '../src/index.js';
import type { WalIo } from '../src/io/types.js';
import { BACKENDS } from './helpers/backends.js';
import { events, texts } from './helpers/bytes.js';
import { FaultIo } from './helpers/fault-io.js';
import { randomInt } from 'node:crypto';
import { testSeed } from './helpers/random.js';
import { segmentNames, tempDir } from './helpers/temp-dir.js';

/** Everything a reader yields until it ends, or the error it ends with. */
async function collect<T>(iterator: AsyncIterable<T>): Promise<{ items: T[]; error: WalError | null }> {
  const items: T[] = [];
  try {
    for await (const item of iterator) items.push(item);
    return { items, error: null };
  } catch (error) {
    if (!(error instanceof WalError)) throw error;
    return { items, error };
  }
}

/** A transaction as a comparable value: its LSNs and its events as text. */
const shape = (tx: { beginLsn: number; commitLsn: number; events: Buffer[] }) => ({ beginLsn: tx.beginLsn, commitLsn: tx.commitLsn, events: texts(tx.events) });

/** What open (through replayDir) replays above `fence`, or the error it refuses with. */
async function replayedAbove(dir: string, fence: number) {
  const replayed: Array<ReturnType<typeof shape>> = [];
  try {
    await replayDir(dir, { checkpointLsn: fence, onReplay: (batch, tx) => void replayed.push(shape({ ...tx, events: batch })) });
    return { items: replayed, error: null };
  } catch (error) {
    if (!(error instanceof WalError)) throw error;
    return { items: replayed, error };
  }
}

describe('readTransactions', () => {
  it('yields committed transactions in commit order, never aborted or unfinished ones, with events decoded by the codec', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', codec: codecs.utf8, sync: 'none' });
    await wal.commit(['one', 'two']);
    const early = wal.begin();
    early.append('begun first');
    const aborted = wal.begin();
    aborted.append('never');
    await wal.commit(['three']);
    aborted.abort();
    await early.commit();
    wal.begin().append('unfinished');
    await wal.close();
    const { items, error } = await collect(readTransactions(dir, { codec: 'utf8' }));
    expect(error).toBeNull();
    expect(items.map((tx) => [tx.beginLsn, tx.commitLsn, tx.events])).toEqual([
      [1, 3, ['one', 'two']],
      [8, 10, ['three']],
      [4, 12, ['begun first']],
    ]);
    // Resume points: after [8..10] the transaction begun at 4 is still open, so a reader must start there.
    expect(items.map((tx) => tx.resume)).toEqual([
      { fromLsn: 4, scanFromLsn: 4 },
      { fromLsn: 11, scanFromLsn: 4 },
      { fromLsn: 13, scanFromLsn: 13 },
    ]);
  });

  it('restarting from any yielded transaction with { ...resume } yields exactly the ones committed after it', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 1024, sync: 'none' });
    const spanning = wal.begin();
    for (let i = 0; i < 30; i++) {
      await wal.commit([Buffer.from(`commit ${i} ${'r'.repeat(60)}`)]);
      if (i === 12) spanning.append(Buffer.from('spans several segments'));
    }
    await spanning.commit();
    for (let i = 30; i < 34; i++) await wal.commit([Buffer.from(`commit ${i}`)]);
    await wal.close();
    expect(segmentNames(dir).length).toBeGreaterThan(3);
    const all = (await collect(readTransactions(dir))).items.map(shape);
    expect(all).toHaveLength(35);
    const yielded = (await collect(readTransactions(dir))).items;
    for (const [index, tx] of yielded.entries()) {
      const rest = await collect(readTransactions(dir, { ...tx.resume }));
      expect(rest.error).toBeNull();
      expect(rest.items.map(shape)).toEqual(all.slice(index + 1));
    }
  });

  it('asked for LSNs a truncation removed, it throws WAL_LSN_TRUNCATED instead of skipping them', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 1024, sync: 'none' });
    for (let i = 0; i < 40; i++) await wal.commit([Buffer.from(`commit ${i} ${'t'.repeat(60)}`)]);
    await wal.checkpoint(() => undefined);
    await wal.close();
    expect(segmentNames(dir)[0]).not.toBe('0000000001.wal');
    const { items, error } = await collect(readTransactions(dir, { fromLsn: 2, scanFromLsn: 2 }));
    expect(items).toEqual([]);
    expect(error).toMatchObject({ code: 'WAL_LSN_TRUNCATED', message: expect.stringMatching(/no longer holds LSN 2/) });
  });

  it('follows a live log across rotation and truncation, and stops when aborted', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 1024, sync: 'none' });
    const controller = new AbortController();
    const seen: Array<CommittedTransaction<Buffer>> = [];
    const following = collect(
      (async function* () {
        for await (const tx of readTransactions(dir, { follow: true, pollMs: 2, signal: controller.signal, fromLsn: 1 })) {
          seen.push(tx);
          yield tx;
        }
      })(),
    );
    const written: string[] = [];
    for (let i = 0; i < 60; i++) {
      const text = `live ${i} ${'f'.repeat(50)}`;
      written.push(text);
      await wal.commit([Buffer.from(text)]);
      if (i % 15 === 14) {
        // Truncate only what the follower has read: it never needed what is deleted.
        await expect.poll(() => seen.length, { timeout: 5000, interval: 2 }).toBe(i + 1);
        await wal.checkpoint(() => undefined);
      }
    }
    await expect.poll(() => seen.length, { timeout: 5000, interval: 2 }).toBe(60);
    controller.abort();
    const { error } = await following;
    expect(error).toBeNull();
    expect(seen.map((tx) => texts(tx.events)[0])).toEqual(written);
    expect(Number.parseInt(segmentNames(dir)[0]!, 10)).toBeGreaterThan(1);
    await wal.close();
  });

  it('bad options are refused with WAL_INVALID_OPTIONS', async () => {
    for (const options of [{ fromLsn: 0 }, { scanFromLsn: -1 }, { durableOnly: 'yes' }, { follw: true }, { codec: 'xml' }]) {
      const { error } = await collect(readTransactions(tempDir(), options as object));
      expect(error, JSON.stringify(options)).toMatchObject({ code: 'WAL_INVALID_OPTIONS' });
    }
  });
});

describe.each(BACKENDS)('reading only what is durable on the $name backend', ({ io }) => {
  it('wal.readTransactions yields nothing past durableLsn (group mode, long interval), then the rest after sync()', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io(), sync: { mode: 'group', intervalMs: 60_000 } });
    await wal.commit(events('durable'), { durable: true });
    const controller = new AbortController();
    const seen: string[] = [];
    const reading = collect(
      (async function* () {
        for await (const tx of wal.readTransactions({ fromLsn: 1, signal: controller.signal })) {
          seen.push(...texts(tx.events));
          yield tx;
        }
      })(),
    );
    await expect.poll(() => seen, { timeout: 5000, interval: 2 }).toEqual(['durable']);
    await wal.commit(events('written, not yet durable'));
    expect(wal.durableLsn).toBe(3);
    // The reader is woken by the write (it reads the bytes), but holds the transaction back.
    await new Promise((resolve) => setImmediate(resolve));
    await wal.flush();
    expect(seen).toEqual(['durable']);
    await wal.sync();
    await expect.poll(() => seen, { timeout: 5000, interval: 2 }).toEqual(['durable', 'written, not yet durable']);
    controller.abort();
    expect((await reading).error).toBeNull();
    await wal.close();
  });

  it('wal.readTransactions misses no commit made while its consumer held the one before: it reads again rather than wait for more', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io(), sync: 'per-commit' });
    await wal.commit(events('first'));
    const controller = new AbortController();
    const iterator = wal.readTransactions({ fromLsn: 1, signal: controller.signal })[Symbol.asyncIterator]();
    expect(texts((await iterator.next()).value!.events)).toEqual(['first']);
    // Written and fsync'd while the reader waits at its yield, before it waits for the log's progress: the last commit for a while.
    await wal.commit(events('second'));
    const next = iterator.next();
    const outcome = await Promise.race([next, new Promise((resolve) => setTimeout(resolve, 5_000, 'still waiting after 5 s'))]);
    expect(outcome).toMatchObject({ done: false, value: { events: [Buffer.from('second')] } });
    controller.abort();
    await next;
    await wal.close();
  });

  it('a durable-only reader in another process fdatasyncs what it read before yielding it', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io(), sync: { mode: 'group', intervalMs: 60_000 } });
    await wal.commit(events('written'));
    expect(wal.durableLsn).toBe(0);
    const observed = new FaultIo(io());
    const order: string[] = [];
    const recording: WalIo = {
      ...observed,
      name: 'recording',
      async: {
        ...observed.async,
        read: async (...args) => {
          const got = await observed.async.read(...args);
          order.push('read');
          return got;
        },
        datasync: async (fd) => {
          await observed.async.datasync(fd);
          order.push('datasync');
        },
      },
    };
    const items: string[][] = [];
    for await (const tx of readTransactions(dir, { durableOnly: true, io: recording })) {
      items.push(texts(tx.events));
      order.push('yield');
    }
    expect(items).toEqual([['written']]);
    // What was read before a transaction was yielded was fdatasync'd after that read.
    const firstYield = order.indexOf('yield');
    const lastRead = order.lastIndexOf('read', firstYield);
    expect(lastRead).toBeGreaterThanOrEqual(0);
    expect(order.slice(lastRead, firstYield)).toContain('datasync');
    const plain: string[] = [];
    const { items: again } = await collect(
      readTransactions(dir, {
        io: { ...recording, async: { ...recording.async, datasync: async () => void plain.push('datasync') } },
      }),
    );
    expect(again).toHaveLength(1);
    expect(plain).toEqual([]);
    await wal.close();
  });
});

/*
 * The property of issue 13: for random interleavings of commit, begin / append
 * / commit / abort of several open transactions, and checkpoint (marker +
 * truncation) across rotations, readTransactions from every LSN yields exactly
 * what open's replay yields after that point (the same transactions in the
 * same order, or the same refusal), and a follower that read along yields
 * every committed transaction, as a later full read does from where the log
 * now starts.
 */
type Op = { kind: 'commit'; events: number } | { kind: 'begin' } | { kind: 'append'; tx: number } | { kind: 'end'; tx: number; abort: boolean } | { kind: 'checkpoint' };

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('commit' as const), events: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'begin' as const }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('append' as const), tx: fc.nat(7) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('end' as const), tx: fc.nat(7), abort: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'checkpoint' as const }) },
);

describe('readTransactions against open (property)', () => {
  const runs = process.env.SEGWAL_RELIABILITY === 'full' ? 200 : 12;
  it(`from every LSN equals open's replay after it, and a follower equals the committed history (${runs} random logs)`, async () => {
    const seed = testSeed('readTransactions property', 'SEGWAL_READER_SEED', () => randomInt(2 ** 31), 2 ** 31);
    await fc.assert(
      fc.asyncProperty(fc.array(opArbitrary, { minLength: 10, maxLength: 70 }), async (ops) => {
        const dir = tempDir();
        const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 1024, sync: 'none' });
        const controller = new AbortController();
        const followed: Array<ReturnType<typeof shape>> = [];
        const follower = collect(
          (async function* () {
            for await (const tx of readTransactions(dir, { follow: true, fromLsn: 1, pollMs: 1, signal: controller.signal })) {
              followed.push(shape(tx));
              yield tx;
            }
          })(),
        );
        const committed: Array<ReturnType<typeof shape>> = [];
        const open: Array<{ tx: Tx; events: string[] }> = [];
        let counter = 0;
        for (const op of ops) {
          if (op.kind === 'commit') {
            const batch = Array.from({ length: op.events }, () => `c${counter++}-${'p'.repeat(counter % 90)}`);
            const lsns = (await wal.commit(events(...batch)))!;
            committed.push({ ...lsns, events: batch });
          } else if (op.kind === 'begin') {
            open.push({ tx: wal.begin(), events: [] });
          } else if (op.kind === 'append' && open.length > 0) {
            const entry = open[op.tx % open.length]!;
            const text = `a${counter++}`;
            entry.tx.append(Buffer.from(text));
            entry.events.push(text);
          } else if (op.kind === 'end' && open.length > 0) {
            const [entry] = open.splice(op.tx % open.length, 1);
            if (op.abort) entry!.tx.abort();
            else committed.push({ ...(await entry!.tx.commit()), events: entry!.events });
          } else if (op.kind === 'checkpoint') {
            // The follower reads along first: a truncation may delete only what it has read.
            await wal.flush();
            await expect.poll(() => followed.length, { timeout: 10_000, interval: 1 }).toBe(committed.length);
            await wal.checkpoint(() => undefined);
          }
        }
        await wal.close();
        await expect.poll(() => followed.length, { timeout: 10_000, interval: 1 }).toBe(committed.length);
        controller.abort();
        expect((await follower).error).toBeNull();
        expect(followed).toEqual(committed);

        const maxLsn = wal.nextLsn - 1;
        for (let fromLsn = 1; fromLsn <= maxLsn + 1; fromLsn++) {
          const read = await collect(readTransactions(dir, { fromLsn }));
          const replayed = await replayedAbove(dir, fromLsn - 1);
          expect(read.error?.code, `fromLsn ${fromLsn}`).toBe(replayed.error?.code);
          if (replayed.error === null) expect(read.items.map(shape), `fromLsn ${fromLsn}`).toEqual(replayed.items);
        }
        // The default reads what open replays by default, and that is the committed history above the last marker.
        const { recovery } = await replayDir(dir);
        const byDefault = await collect(readTransactions(dir));
        expect(byDefault.items.map(shape)).toEqual(committed.filter((tx) => tx.commitLsn > recovery.checkpointLsn).sort((a, b) => a.commitLsn - b.commitLsn));
      }),
      { numRuns: runs, seed },
    );
  }, 600_000);
});
