import { describe, expect, it } from 'vitest';
import { Wal, readWal } from '../src/index.js';
import { RecordKind } from '../src/format/constants.js';
import { BACKENDS } from './helpers/backends.js';
import { events, texts } from './helpers/bytes.js';
import { FaultIo } from './helpers/fault-io.js';
import { segmentNames, tempDir } from './helpers/temp-dir.js';

/** Per segment id, the highest LSN it holds, read back through readWal. */
async function lastLsnBySegment(dir: string): Promise<Map<number, number>> {
  const last = new Map<number, number>();
  for await (const record of readWal(dir)) last.set(record.segmentId, record.lsn);
  return last;
}

async function manySegmentLog(dir: string, io: FaultIo) {
  const opened = await Wal.open({ dir, io, segmentBytes: 1024, sync: 'none' });
  for (let i = 0; i < 80; i++) await opened.wal.commit([Buffer.alloc(60, i)]);
  return opened.wal;
}

describe.each(BACKENDS)('truncation and checkpoint on the $name backend', ({ io }) => {
  it('truncateUpTo deletes only sealed segments wholly at or below the fence, fsyncs the directory, and is idempotent', async () => {
    const dir = tempDir();
    const counted = new FaultIo(io());
    const wal = await manySegmentLog(dir, counted);
    const before = segmentNames(dir);
    expect(before.length).toBeGreaterThan(6);
    const lastLsns = await lastLsnBySegment(dir);
    // A fence in the middle of segment 4: segments 1..3 go, 4 stays.
    const fence = lastLsns.get(3)! + 2;
    const dirSyncs = counted.count('syncDir');
    expect(await wal.truncateUpTo(fence)).toBe(3);
    // One directory fsync per delete, so the deletes reach the disk oldest first.
    expect(counted.count('syncDir')).toBe(dirSyncs + 3);
    expect(segmentNames(dir)).toEqual(before.slice(3));
    expect(wal.oldestSegmentId).toBe(4);

    expect(await wal.truncateUpTo(fence)).toBe(0);
    expect(segmentNames(dir)).toEqual(before.slice(3));
    expect(counted.count('syncDir')).toBe(dirSyncs + 3);
    await wal.close();

    const { wal: reopened, events: replayed } = await Wal.open({ dir, io: io(), checkpointLsn: fence });
    expect(replayed.map((event) => event[0])).toEqual(Array.from({ length: 80 }, (_, i) => i).filter((i) => 3 * i + 3 > fence));
    await reopened.close();
  });

  it('truncateUpTo always keeps the active segment and the one before it', async () => {
    const dir = tempDir();
    const wal = await manySegmentLog(dir, new FaultIo(io()));
    const names = segmentNames(dir);
    expect(wal.truncateUpToSync(wal.durableLsn)).toBe(names.length - 2);
    expect(segmentNames(dir)).toEqual(names.slice(-2));
    expect(await wal.truncateUpTo(Number.MAX_SAFE_INTEGER)).toBe(0);
    await wal.close();
  });

  it('checkpoint(writeSnapshot) syncs, snapshots at the durable LSN, writes the marker, syncs, and truncates', async () => {
    const dir = tempDir();
    const counted = new FaultIo(io());
    const wal = await manySegmentLog(dir, counted);
    const lastBefore = wal.nextLsn - 1;
    const segmentsBefore = segmentNames(dir).length;
    let seenDurable = -1;
    let fsyncsBeforeSnapshot = 0;
    const fence = await wal.checkpoint((fenceLsn) => {
      seenDurable = wal.durableLsn;
      fsyncsBeforeSnapshot = counted.fsyncs;
      expect(fenceLsn).toBe(lastBefore);
    });
    expect(fence).toBe(lastBefore);
    expect(seenDurable).toBe(lastBefore);
    expect(fsyncsBeforeSnapshot).toBeGreaterThan(0);
    expect(counted.fsyncs).toBeGreaterThan(fsyncsBeforeSnapshot);
    expect(wal.durableLsn).toBe(lastBefore + 1);
    expect(segmentNames(dir).length).toBe(2);
    expect(segmentNames(dir).length).toBeLessThan(segmentsBefore);
    await wal.close();

    const records = [];
    for await (const record of readWal(dir)) records.push(record);
    expect(records.at(-1)).toMatchObject({ kind: RecordKind.Checkpoint, lsn: lastBefore + 1, txBeginLsn: fence });
    const { wal: reopened, events: replayed, recovery } = await Wal.open({ dir, io: io(), checkpointLsn: fence });
    expect(replayed).toEqual([]);
    expect(recovery.checkpointLsnObserved).toBe(fence);
    await reopened.close();
  });

  it('checkpoint lowers the fence below a transaction still in progress, so its events survive', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io() });
    await wal.commit(events('before'));
    const open = wal.begin();
    open.append(Buffer.from('in progress'));
    const fence = await wal.checkpoint(() => undefined);
    expect(fence).toBe(open.beginLsn - 1);
    open.commit();
    await wal.close();
    const { wal: reopened, events: replayed } = await Wal.open({ dir, io: io(), checkpointLsn: fence });
    expect(texts(replayed)).toEqual(['in progress']);
    await reopened.close();
  });
});
