import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { Wal, type WalError } from '../src/index.js';
import { BACKENDS } from './helpers/backends.js';
import { events } from './helpers/bytes.js';
import { runModule } from './helpers/child.js';
import { FaultIo } from './helpers/fault-io.js';
import { tempDir } from './helpers/temp-dir.js';
import type { SyncMode } from '../src/types.js';

describe.each(BACKENDS)('durability on the $name backend', ({ io }) => {
  it('group mode: a commit resolves once written; the timer fsync then advances durableLsn', async () => {
    const counted = new FaultIo(io());
    const { wal } = await Wal.open({ dir: tempDir(), io: counted, sync: { mode: 'group', intervalMs: 20 } });
    const fsyncsAtOpen = counted.fsyncs;
    // The first fsync of the segment (the timer's) is held until released, however soon the timer fires.
    const timerFsync = counted.hold('fsync');
    const { commitLsn } = (await wal.commit(events('a')))!;
    expect(counted.fsyncs).toBe(fsyncsAtOpen);
    expect(wal.durableLsn).toBeLessThan(commitLsn);
    await timerFsync.reached;
    expect(wal.durableLsn).toBeLessThan(commitLsn);
    timerFsync.release();
    await expect.poll(() => wal.durableLsn, { timeout: 2000, interval: 5 }).toBe(commitLsn);
    expect(counted.fsyncs).toBeGreaterThan(fsyncsAtOpen);
    await wal.close();
  });

  it('group mode: sync() forces the fsync without waiting for the timer', async () => {
    const counted = new FaultIo(io());
    const { wal } = await Wal.open({ dir: tempDir(), io: counted, sync: { mode: 'group', intervalMs: 60_000 } });
    const { commitLsn } = (await wal.commit(events('a')))!;
    expect(wal.durableLsn).toBeLessThan(commitLsn);
    const before = counted.fsyncs;
    await wal.sync();
    expect(wal.durableLsn).toBe(commitLsn);
    expect(counted.fsyncs).toBe(before + 1);
    await wal.close();
  });

  it("closeSync while the group timer's fsync is in flight: the file stays open until that fsync returns, which succeeds, and no failure is heard", async () => {
    const dir = tempDir();
    const faulty = new FaultIo(io());
    const { wal } = await Wal.open({ dir, io: faulty, sync: { mode: 'group', intervalMs: 10 } });
    const failures: WalError[] = [];
    wal.on('failure', (error) => failures.push(error));
    const fsync = faulty.hold('fsync');
    await wal.commit(events('written'));
    await fsync.reached; // the timer's fsync, held in flight
    expect(wal.closeSync()).toEqual({ droppedTransactions: 0 });
    expect(openFilesIn(dir)).toBe(1); // the segment that fsync still uses
    fsync.release();
    await expect.poll(() => openFilesIn(dir)).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(failures).toEqual([]);
    const { events: replayed } = await Wal.open({ dir, io: io() }).then(async (opened) => (await opened.wal.close(), opened));
    expect(replayed).toEqual(events('written'));
  });

  it('group mode: commit({ durable: true }) resolves only after an fsync that covers it', async () => {
    const counted = new FaultIo(io());
    const { wal } = await Wal.open({ dir: tempDir(), io: counted, sync: { mode: 'group', intervalMs: 60_000 } });
    const plainLsns = (await wal.commit(events('not waiting')))!;
    expect(wal.durableLsn).toBeLessThan(plainLsns.commitLsn);
    const before = counted.fsyncs;
    const fsync = counted.hold('fsync');
    const durable = wal.commit(events('waiting'), { durable: true });
    let resolved = false;
    void durable.then(() => (resolved = true));
    const first = await Promise.race([fsync.reached.then(() => 'fsync called'), durable.then(() => 'commit resolved')]);
    expect(first).toBe('fsync called'); // and held there, in flight
    await new Promise((resolve) => setImmediate(resolve)); // whatever could resolve it has run
    expect(resolved).toBe(false);
    fsync.release();
    const { commitLsn } = (await durable)!;
    expect(counted.fsyncs).toBeGreaterThan(before);
    expect(wal.durableLsn).toBeGreaterThanOrEqual(commitLsn);
    await wal.close();
  });

  it('none mode: durableLsn follows every write, and no fsync runs for commits', async () => {
    const counted = new FaultIo(io());
    const { wal } = await Wal.open({ dir: tempDir(), io: counted, sync: 'none' });
    const before = counted.fsyncs;
    const { commitLsn } = (await wal.commit(events('a')))!;
    expect(wal.durableLsn).toBe(commitLsn);
    expect(wal.commitSync(events('b'))!.commitLsn).toBe(wal.durableLsn);
    expect(counted.fsyncs).toBe(before);
    await wal.close();
  });

  it('none mode: commitSync starts the writeback of each MiB it wrote (a hint, never an fsync), whole pages only', async () => {
    const counted = new FaultIo(io());
    const { wal } = await Wal.open({ dir: tempDir(), io: counted, sync: 'none', segmentBytes: 64 * 1024 * 1024 });
    const starts: Array<[number, number]> = [];
    const inner = counted.sync.startWriteback;
    counted.sync.startWriteback = (fd, offset, length) => (starts.push([offset, length]), inner(fd, offset, length));
    const before = counted.fsyncs;
    for (let i = 0; i < 3 * 1024; i++) wal.commitSync([Buffer.alloc(1024 - 33, i)]); // 1 KiB a commit: 3 MiB
    expect(counted.fsyncs).toBe(before);
    expect(starts.length).toBe(2);
    // Back to back from the header on, each a MiB or a little more, ending on a page boundary.
    expect(starts[0]![0]).toBe(32);
    expect(starts[1]![0]).toBe(starts[0]![0] + starts[0]![1]);
    for (const [offset, length] of starts) {
      expect(length).toBeGreaterThanOrEqual(1024 * 1024 - 4096);
      expect((offset + length) % 4096).toBe(0);
    }
    await wal.close();
  });

  it('per-commit mode: commit and commitSync return only after their fsync', async () => {
    const counted = new FaultIo(io());
    const { wal } = await Wal.open({ dir: tempDir(), io: counted, sync: 'per-commit' });
    const before = counted.fsyncs;
    const { commitLsn } = (await wal.commit(events('a')))!;
    expect(counted.fsyncs).toBe(before + 1);
    expect(wal.durableLsn).toBe(commitLsn);
    const sync = wal.commitSync(events('b'))!;
    expect(counted.fsyncs).toBe(before + 2);
    expect(wal.durableLsn).toBe(sync.commitLsn);
    await wal.close();
  });

  it('per-commit mode group-commits: 64 concurrent commits share far fewer than 64 fsyncs, and all resolve', async () => {
    const counted = new FaultIo(io()).delayFsync(5);
    const { wal } = await Wal.open({ dir: tempDir(), io: counted, sync: 'per-commit' });
    const before = counted.fsyncs;
    const results = await Promise.all(Array.from({ length: 64 }, (_, i) => wal.commit([Buffer.from(`event ${i}`)])));
    const fsyncs = counted.fsyncs - before;
    expect(results.every((lsns) => lsns !== null && lsns.commitLsn <= wal.durableLsn)).toBe(true);
    expect(new Set(results.map((lsns) => lsns!.commitLsn)).size).toBe(64);
    expect(fsyncs).toBeGreaterThan(0);
    expect(fsyncs).toBeLessThanOrEqual(8);
    await wal.close();
  });

  it('fsync runs off the event loop: with a 200 ms fsync in flight, a 5 ms interval timer keeps firing', async () => {
    // The fault io's sync form blocks the thread for the delay, its async form does not:
    // if the async API ever used a blocking fsync, the timer would stall.
    const slow = new FaultIo(io()).delayFsync(200);
    const { wal } = await Wal.open({ dir: tempDir(), io: slow, sync: 'per-commit' });
    const ticks: number[] = [];
    const timer = setInterval(() => ticks.push(performance.now()), 5);
    const started = performance.now();
    await wal.commit(events('slow'));
    const elapsed = performance.now() - started;
    clearInterval(timer);
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(ticks.length).toBeGreaterThanOrEqual(10);
    const longestGap = Math.max(...ticks.slice(1).map((tick, i) => tick - ticks[i]!));
    expect(longestGap).toBeLessThan(150);
    await wal.close();
  });

  it('close() writes and fsyncs what group mode still buffers', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io(), sync: { mode: 'group', intervalMs: 60_000 } });
    const tx = wal.begin();
    tx.append(Buffer.from('buffered'));
    tx.commit();
    await wal.close();
    const { wal: reopened, events: replayed } = await Wal.open({ dir, io: io() });
    expect(replayed).toEqual([Buffer.from('buffered')]);
    await reopened.close();
  });

  it.each(['per-commit', 'group', 'none'] as SyncMode[])(
    'a multi-step transaction is kept once `await tx.commit()` resolves, even when the process then exits without close (%s)',
    async (mode) => {
      const dir = tempDir();
      const child = await runModule(
        `const { wal } = await segwal.Wal.open({ dir: process.argv[1], io: ${JSON.stringify(io().name)}, sync: ${JSON.stringify(mode)} });
         const tx = wal.begin();
         tx.append(Buffer.from('step 1'));
         tx.appendBatch([Buffer.from('step 2')]);
         const lsns = await tx.commit();
         console.log(JSON.stringify({ lsns, durable: wal.durableLsn >= lsns.commitLsn }));
         process.exit(0);`,
        [dir],
      );
      expect(child.code).toBe(0);
      const { lsns, durable } = JSON.parse(child.stdout);
      expect(lsns).toEqual({ beginLsn: 1, commitLsn: 4 });
      expect(durable).toBe(mode !== 'group');
      const { wal, events: replayed } = await Wal.open({ dir, io: io() });
      expect(replayed).toEqual([Buffer.from('step 1'), Buffer.from('step 2')]);
      await wal.close();
    },
  );

  it('tx.commit() resolves at the point wal.commit() would: after its fsync in per-commit mode, and with durable: true in group mode', async () => {
    const counted = new FaultIo(io()).delayFsync(30);
    const { wal } = await Wal.open({ dir: tempDir(), io: counted, sync: 'per-commit' });
    const before = counted.fsyncs;
    const tx = wal.begin();
    tx.append(Buffer.from('a'));
    const { commitLsn } = await tx.commit();
    expect(counted.fsyncs).toBeGreaterThan(before);
    expect(wal.durableLsn).toBeGreaterThanOrEqual(commitLsn);
    const blocking = wal.begin();
    blocking.append(Buffer.from('b'));
    const fsyncsBefore = counted.fsyncs;
    expect(blocking.commitSync().commitLsn).toBe(wal.durableLsn);
    expect(counted.fsyncs).toBe(fsyncsBefore + 1);
    await wal.close();

    const { wal: grouped } = await Wal.open({ dir: tempDir(), io: counted, sync: { mode: 'group', intervalMs: 60_000 } });
    const plain = grouped.begin();
    const plainLsns = await plain.commit();
    expect(grouped.durableLsn).toBeLessThan(plainLsns.commitLsn);
    const durable = grouped.begin();
    const durableLsns = await durable.commit({ durable: true });
    expect(grouped.durableLsn).toBeGreaterThanOrEqual(durableLsns.commitLsn);
    await grouped.close();
  });

  it('close() reports transactions still open (returned, and as a process warning); replay drops them', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io() });
    await wal.commit(events('kept'));
    wal.begin().append(Buffer.from('never committed'));
    wal.begin();
    const warned = new Promise<Error & { code?: string }>((resolve) => {
      const onWarning = (warning: Error & { code?: string }) => {
        if (warning.code !== 'SEGWAL_OPEN_TRANSACTIONS_DROPPED') return;
        process.off('warning', onWarning);
        resolve(warning);
      };
      process.on('warning', onWarning);
    });
    expect(await wal.close()).toEqual({ droppedTransactions: 2 });
    expect((await warned).message).toMatch(/closed with 2 transaction\(s\).*replay drops them/);
    const { wal: reopened, events: replayed, recovery } = await Wal.open({ dir, io: io() });
    expect(replayed).toEqual([Buffer.from('kept')]);
    expect(recovery.incompleteTransactions).toBe(2);
    expect(await reopened.close()).toEqual({ droppedTransactions: 0 });
  });
});

/** Files under `dir` this process holds open. */
function openFilesIn(dir: string): number {
  return fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${dir}/`);
    } catch {
      return false; // closed since it was listed
    }
  }).length;
}
