import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Wal, WalError } from '../src/index.js';
import { RecordKind } from '../src/format/constants.js';
import { BACKENDS } from './helpers/backends.js';
import { FaultIo } from './helpers/fault-io.js';
import { events, texts } from './helpers/bytes.js';
import { runModule } from './helpers/child.js';
import { committedTx, craftSegment, segmentPath, writeSegment } from './helpers/craft.js';
import { segmentNames, snapshotFiles, tempDir } from './helpers/temp-dir.js';

async function openError(promise: Promise<unknown>): Promise<WalError> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(WalError);
  return error as WalError;
}

describe.each(BACKENDS)('open on the $name backend', ({ name, io }) => {
  it('a second open of the same directory in this process fails with WAL_ALREADY_OPEN, and works after close', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io() });
    const error = await openError(Wal.open({ dir, io: io() }));
    expect(error.code).toBe('WAL_ALREADY_OPEN');
    expect(error.message).toContain(dir);
    expect(() => Wal.openSync({ dir, io: io() })).toThrow(expect.objectContaining({ code: 'WAL_ALREADY_OPEN' }));
    await wal.close();
    const again = Wal.openSync({ dir, io: io() });
    again.wal.closeSync();
  });

  it('a second open from a child process fails with WAL_ALREADY_OPEN while the log is open, and works after close', async () => {
    const dir = tempDir();
    const childOpen = `
      try {
        const { wal } = await segwal.Wal.open({ dir: process.argv[1], io: ${JSON.stringify(name)} });
        await wal.close();
        console.log('opened');
      } catch (error) {
        console.log(error.code);
      }`;
    const { wal } = await Wal.open({ dir, io: io() });
    expect((await runModule(childOpen, [dir])).stdout.trim()).toBe('WAL_ALREADY_OPEN');
    await wal.close();
    expect((await runModule(childOpen, [dir])).stdout.trim()).toBe('opened');
  });

  it('a crash after the old segment was sealed but before the new one existed opens a new active segment', async () => {
    const dir = tempDir();
    writeSegment(dir, 1, craftSegment(1, [...committedTx(1, 'one'), ...committedTx(4, 'two')], true));
    const { wal, events: replayed, recovery } = await Wal.open({ dir, io: io() });
    expect(texts(replayed)).toEqual(['one', 'two']);
    expect(recovery.repairs.length).toBe(1);
    expect(segmentNames(dir)).toEqual(['0000000001.wal', '0000000002.wal']);
    expect(wal.activeSegmentId).toBe(2);
    await wal.commit(events('three'));
    await wal.close();
    const { wal: reopened, events: all, recovery: clean } = await Wal.open({ dir, io: io() });
    expect(texts(all)).toEqual(['one', 'two', 'three']);
    expect(clean.repairs).toEqual([]);
    await reopened.close();
  });

  it.each([
    ['missing (an empty file)', Buffer.alloc(0)],
    ['all zeros', Buffer.alloc(32)],
    ['partial', craftSegment(7, []).subarray(0, 13)],
    ['zero with a zero-filled preallocated tail', Buffer.alloc(4096)],
  ])('a new last segment whose header is %s and holds no record is replaced', async (_label, newSegment) => {
    const dir = tempDir();
    writeSegment(dir, 1, craftSegment(1, [...committedTx(1, 'one'), ...committedTx(4, 'two')], true));
    writeSegment(dir, 2, newSegment);
    const { wal, events: replayed, recovery } = await Wal.open({ dir, io: io() });
    expect(texts(replayed)).toEqual(['one', 'two']);
    expect(recovery.repairs.length).toBe(1);
    expect(wal.nextLsn).toBe(7);
    await wal.commit(events('three'));
    await wal.close();
    const header = fs.readFileSync(segmentPath(dir, 2)).subarray(0, 32);
    expect(header.subarray(0, 6).toString()).toBe('SEGWAL');
    expect(header.readBigUInt64LE(12)).toBe(7n);
    const { wal: reopened, events: all } = await Wal.open({ dir, io: io() });
    expect(texts(all)).toEqual(['one', 'two', 'three']);
    await reopened.close();
  });

  it('files that are not segments are ignored and never deleted', async () => {
    const dir = tempDir();
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(`${dir}/README`, 'keep me');
    fs.writeFileSync(`${dir}/0000000009.wal.tmp`, 'stray');
    const { wal } = await Wal.open({ dir, io: io(), segmentBytes: 1024 });
    for (let i = 0; i < 40; i++) await wal.commit([Buffer.alloc(100, i)]);
    await wal.truncateUpTo(wal.durableLsn);
    await wal.close();
    expect(fs.readFileSync(`${dir}/README`, 'utf8')).toBe('keep me');
    expect(fs.readFileSync(`${dir}/0000000009.wal.tmp`, 'utf8')).toBe('stray');
  });

  it('open replays with onReplay once per committed transaction and then returns no events', async () => {
    const dir = tempDir();
    writeSegment(dir, 1, craftSegment(1, [...committedTx(1, 'one'), ...committedTx(4, 'two'), { kind: RecordKind.TxBegin, lsn: 7 }]));
    const seen: Array<[string[], number, number]> = [];
    const { wal, events: replayed } = await Wal.open({
      dir,
      io: io(),
      onReplay: (batch, tx) => void seen.push([texts(batch), tx.beginLsn, tx.commitLsn]),
    });
    expect(replayed).toEqual([]);
    expect(seen).toEqual([
      [['one'], 1, 3],
      [['two'], 4, 6],
    ]);
    expect(wal.nextLsn).toBe(8);
    await wal.close();
  });
});

describe.each(BACKENDS)('the spare segment on the $name backend', ({ io }) => {
  it('is prepared once the active segment is half full, adopted by rotation (rename, no creation), and removed at close', async () => {
    const dir = tempDir();
    const counted = new FaultIo(io());
    const { wal } = await Wal.open({ dir, io: counted, segmentBytes: 4096 });
    // What open did (segment 1, the log id file) is not the spare's doing.
    const opensAtOpen = counted.count('openSegment');
    const renamesAtOpen = counted.count('rename');
    const spare = `${dir}/.segwal.next`;
    // A small log carries no spare: 5 commits of ~230 bytes fill well under half of 4096 bytes.
    for (let i = 0; i < 5; i++) await wal.commit([Buffer.alloc(200, i)]);
    await wal.sync();
    expect(fs.existsSync(spare)).toBe(false);
    expect(counted.count('openSegment')).toBe(opensAtOpen);
    for (let i = 5; i < 10; i++) await wal.commit([Buffer.alloc(200, i)]);
    await expect.poll(() => fs.existsSync(spare) && fs.statSync(spare).size === 4096, { timeout: 2000, interval: 5 }).toBe(true);
    for (let i = 10; i < 30; i++) await wal.commit([Buffer.alloc(200, i)]);
    const renames = counted.count('rename') - renamesAtOpen;
    expect(segmentNames(dir).length).toBeGreaterThan(1);
    expect(renames).toBeGreaterThan(0);
    // Every segment after the first came from a spare: renamed, not created in place.
    expect(renames).toBe(segmentNames(dir).length - 1);
    // Opens since: one spare per rotation plus at most one more in the works.
    expect(counted.count('openSegment') - opensAtOpen).toBeLessThanOrEqual(renames + 1);
    await wal.close();
    expect(fs.existsSync(spare)).toBe(false);
    const { wal: reopened, events: replayed } = await Wal.open({ dir, io: io() });
    expect(replayed.length).toBe(30);
    await reopened.close();
  });

  it.each([
    ['a steady stream of per-commit commits, which never lets the drain loop go idle', 0],
    ['a spare slower to prepare than the segment is to fill: rotation waits for it', 100],
  ])('under %s, every rotation adopts a spare, none creates a segment in place', async (_label, allocateDelayMs) => {
    const dir = tempDir();
    const counted = new FaultIo(io());
    const { wal } = await Wal.open({ dir, io: counted, sync: 'per-commit', segmentBytes: 4096 });
    counted.delay('allocate', allocateDelayMs);
    const opensAtOpen = counted.count('openSegment');
    const renamesAtOpen = counted.count('rename');
    await Promise.all(
      Array.from({ length: 8 }, async (_, writer) => {
        for (let i = 0; i < 20; i++) await wal.commit([Buffer.alloc(200, writer)]);
      }),
    );
    const rotations = segmentNames(dir).length - 1;
    expect(rotations).toBeGreaterThan(3);
    expect(counted.count('rename') - renamesAtOpen).toBe(rotations);
    // Every file created since open was a spare: one per rotation, plus at most the one being prepared.
    expect(counted.count('openSegment') - opensAtOpen).toBeLessThanOrEqual(rotations + 1);
    await wal.close();
    const { wal: reopened, events: replayed } = await Wal.open({ dir, io: io() });
    expect(replayed.length).toBe(160);
    await reopened.close();
  });

  it('a stale spare left by a crash is removed at open and never replayed', async () => {
    const dir = tempDir();
    writeSegment(dir, 1, craftSegment(1, committedTx(1, 'one')));
    fs.writeFileSync(`${dir}/.segwal.next`, craftSegment(4, committedTx(4, 'never a segment')));
    const { wal, events: replayed } = Wal.openSync({ dir, io: io() });
    expect(texts(replayed)).toEqual(['one']);
    expect(fs.existsSync(`${dir}/.segwal.next`)).toBe(false);
    wal.closeSync();
  });
});

describe.each(BACKENDS)('closeSync after awaited calls on the $name backend', ({ io }) => {
  /** A log whose active segment is over half full, so an async open starts preparing the spare at once. */
  async function halfFullLog(dir: string): Promise<void> {
    const { wal } = await Wal.open({ dir, io: io(), segmentBytes: 4096 });
    for (let i = 0; i < 10; i++) await wal.commit([Buffer.alloc(200, i)]);
    await wal.close();
  }

  it('right after open, closeSync closes and releases the lock (nothing in the background blocks it)', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io() });
    expect(wal.closeSync()).toEqual({ droppedTransactions: 0 });
    Wal.openSync({ dir, io: io() }).wal.closeSync();
  });

  it('while the spare segment is being prepared, closeSync abandons it: the lock is released and the spare removed', async () => {
    const dir = tempDir();
    await halfFullLog(dir);
    const slow = new FaultIo(io()).delay('allocate', 150);
    const { wal } = await Wal.open({ dir, io: slow, segmentBytes: 4096 });
    await expect.poll(() => slow.count('allocate'), { timeout: 2000, interval: 2 }).toBe(2); // the spare's, after the active segment's
    wal.closeSync();
    expect(fs.existsSync(`${dir}/.segwal.next`)).toBe(false);
    const { wal: reopened, events: replayed } = await Wal.open({ dir, io: io(), segmentBytes: 4096 });
    expect(replayed.length).toBe(10);
    await reopened.close();
    // The abandoned preparation finished on its own fd and closed it.
    await expect.poll(() => slow.count('close'), { timeout: 2000, interval: 5 }).toBeGreaterThan(0);
  });

  it('after commits that fill half a segment and after a rotation, closeSync and Symbol.dispose close', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io(), segmentBytes: 4096 });
    for (let i = 0; i < 10; i++) await wal.commit([Buffer.alloc(200, i)]);
    wal.closeSync();
    const reopened = (await Wal.open({ dir, io: io(), segmentBytes: 4096 })).wal;
    {
      using scoped = reopened;
      const first = scoped.activeSegmentId;
      while (scoped.activeSegmentId === first) await scoped.commit([Buffer.alloc(200, 7)]);
    }
    expect(reopened.status().closed).toBe(true);
    const { wal: last, events: replayed } = await Wal.open({ dir, io: io() });
    expect(replayed.length).toBeGreaterThan(10);
    await last.close();
  });

  it("while the group timer's fsync is in flight, closeSync closes; the timer never writes what a caller staged", async () => {
    const dir = tempDir();
    const slow = new FaultIo(io()).delayFsync(100);
    const { wal } = await Wal.open({ dir, io: slow, sync: { mode: 'group', intervalMs: 5 } });
    await wal.commit(events('written'));
    const tx = wal.begin();
    tx.append(Buffer.from('staged, never asked to be written'));
    const writesBefore = slow.count('appendFrames');
    await expect.poll(() => slow.fsyncCalls, { timeout: 2000, interval: 2 }).toBeGreaterThan(0);
    expect(slow.count('appendFrames')).toBe(writesBefore);
    expect(wal.closeSync()).toEqual({ droppedTransactions: 1 });
    const { wal: reopened, events: replayed, recovery } = await Wal.open({ dir, io: io() });
    expect(texts(replayed)).toEqual(['written']);
    expect(recovery.incompleteTransactions).toBe(1);
    await reopened.close();
  });
});

describe.each(BACKENDS)('a checkpointLsn beyond the end of the log on the $name backend', ({ io }) => {
  it('an empty log starts its LSNs above the fence, so a reopen with the same fence sees every later commit', async () => {
    const dir = tempDir();
    const { wal, recovery } = await Wal.open({ dir, io: io(), checkpointLsn: 1000 });
    expect(wal.nextLsn).toBe(1001);
    expect(recovery.checkpointLsn).toBe(1000);
    expect(await wal.commit(events('after the restored snapshot'))).toEqual({ beginLsn: 1001, commitLsn: 1003 });
    await wal.close();
    const { wal: reopened, events: replayed } = await Wal.open({ dir, io: io(), checkpointLsn: 1000 });
    expect(texts(replayed)).toEqual(['after the restored snapshot']);
    await reopened.close();
  });

  it('an existing empty log (segment 1, no record) is moved above a higher fence', async () => {
    const dir = tempDir();
    (await Wal.open({ dir, io: io() })).wal.closeSync();
    const { wal, recovery } = await Wal.open({ dir, io: io(), checkpointLsn: 50 });
    expect(recovery.repairs).toEqual([expect.stringMatching(/started the empty log at LSN 51/)]);
    await wal.commit(events('x'));
    await wal.close();
    expect(fs.readFileSync(segmentPath(dir, 1)).readBigUInt64LE(12)).toBe(51n);
    const { wal: reopened, events: replayed } = await Wal.open({ dir, io: io(), checkpointLsn: 50 });
    expect(texts(replayed)).toEqual(['x']);
    await reopened.close();
  });

  it('a log with records refuses it with WAL_INVALID_OPTIONS saying why, and is left as it was', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io() });
    await wal.commit(events('one'));
    await wal.close();
    const before = snapshotFiles(dir);
    const error = await openError(Wal.open({ dir, io: io(), checkpointLsn: 1000 }));
    expect(error.code).toBe('WAL_INVALID_OPTIONS');
    expect(error.message).toMatch(/checkpointLsn.*1000 is beyond the end of the log \(its last LSN is 3\)/);
    expect(snapshotFiles(dir)).toEqual(before);
    // At the end of the log is fine.
    const { wal: atEnd, events: replayed } = await Wal.open({ dir, io: io(), checkpointLsn: 3 });
    expect(replayed).toEqual([]);
    await atEnd.commit(events('two'));
    await atEnd.close();
    const { wal: reopened, events: after } = await Wal.open({ dir, io: io(), checkpointLsn: 3 });
    expect(texts(after)).toEqual(['two']);
    await reopened.close();
  });
});

describe.each(BACKENDS)('a failed open on the $name backend', ({ io }) => {
  it('releases the lock it took (bad segment header): the same process and a child can open once it is fixed', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io() });
    await wal.commit(events('one'));
    await wal.close();
    const file = segmentPath(dir, 1);
    const good = fs.readFileSync(file);
    const bad = Buffer.from(good);
    bad[14] = bad[14]! ^ 0xff;
    fs.writeFileSync(file, bad);
    expect((await openError(Wal.open({ dir, io: io() }))).code).toBe('WAL_BAD_SEGMENT_HEADER');
    expect(() => Wal.openSync({ dir, io: io() })).toThrow(expect.objectContaining({ code: 'WAL_BAD_SEGMENT_HEADER' }));
    fs.writeFileSync(file, good);
    const { wal: reopened, events: replayed } = await Wal.open({ dir, io: io() });
    expect(texts(replayed)).toEqual(['one']);
    await reopened.close();
  });

  it('an onReplay that throws gives WAL_REPLAY_HANDLER naming the transaction, with the original as cause, and releases the lock', async () => {
    const dir = tempDir();
    writeSegment(dir, 1, craftSegment(1, [...committedTx(1, 'one'), ...committedTx(4, 'two')]));
    const boom = new TypeError('handler bug');
    const onReplay = (batch: Buffer[]) => {
      if (texts(batch)[0] === 'two') throw boom;
    };
    for (const open of [() => Wal.open({ dir, io: io(), onReplay }), async () => Wal.openSync({ dir, io: io(), onReplay })]) {
      const error = await openError(open());
      expect(error).toMatchObject({ code: 'WAL_REPLAY_HANDLER', lsn: 6, cause: boom });
      expect(error.message).toMatch(/onReplay failed for the transaction with begin LSN 4 and commit LSN 6: handler bug/);
    }
    const rejecting = async () => {
      throw boom;
    };
    expect(await openError(Wal.open({ dir, io: io(), onReplay: rejecting }))).toMatchObject({ code: 'WAL_REPLAY_HANDLER', lsn: 3, cause: boom });
    Wal.openSync({ dir, io: io() }).wal.closeSync();
  });
});
