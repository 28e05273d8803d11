import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { Wal, jsIo, readWal, replayDir, type WalIo, type WalRecord } from '../src/index.js';
import { RecordKind } from '../src/format/constants.js';
import { texts } from './helpers/bytes.js';
import { expectDense, lsnSpan } from './helpers/lsn-spans.js';
import { segmentNames, snapshotFiles, tempDir } from './helpers/temp-dir.js';

describe('readWal and replayDir', () => {
  it('readWal yields every record in order with its location, from fromLsn on, on a log a live Wal holds open', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 1024 });
    for (let i = 0; i < 20; i++) await wal.commit([Buffer.from(`event ${i} ${'z'.repeat(50)}`)]);
    const before = snapshotFiles(dir);
    const records: WalRecord[] = [];
    for await (const record of readWal(dir)) records.push(record);
    // One Commit record per commit, spanning its three LSNs (begin, batch, commit): together 1..60, dense.
    expect(records.map(lsnSpan)).toEqual(Array.from({ length: 20 }, (_, i) => [3 * i + 1, 3 * i + 3]));
    expect(records[0]).toMatchObject({ kind: RecordKind.Commit, lsn: 3, txBeginLsn: 1, segmentId: 1, offset: 32 });
    expect(new Set(records.map((record) => record.segmentId)).size).toBe(segmentNames(dir).length);
    const fromLsn: number[] = [];
    // LSN 56 is inside the record spanning 55..57: that record is yielded.
    for await (const record of readWal(dir, { fromLsn: 56 })) fromLsn.push(record.lsn);
    expect(fromLsn).toEqual([57, 60]);
    expect(snapshotFiles(dir)).toEqual(before);
    await wal.close();
  });

  it('readWal reads a truncated log whose oldest kept segment continues a transaction begun in a deleted one', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 1024 });
    const early = wal.begin();
    early.append(Buffer.from('begun early'));
    for (let i = 0; i < 20; i++) await wal.commit([Buffer.alloc(120, i)]);
    early.append(Buffer.from('still going'));
    early.commit();
    await wal.commit([Buffer.alloc(120, 99)]);
    const fence = await wal.checkpoint(() => undefined);
    await wal.close();
    expect(segmentNames(dir)[0]).not.toBe('0000000001.wal');
    const records: WalRecord[] = [];
    for await (const record of readWal(dir)) records.push(record);
    expectDense(records, null);
    const { events, recovery } = await replayDir(dir, { checkpointLsn: fence });
    expect(events).toEqual([]);
    expect(recovery.checkpointLsnObserved).toBe(fence);
  });

  it('replayDir takes no lock and reports what open would repair, without changing a file', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js' });
    await wal.commit([Buffer.from('visible to a reader')]);
    const before = snapshotFiles(dir);
    const { events, recovery } = await replayDir(dir);
    expect(texts(events)).toEqual(['visible to a reader']);
    expect(recovery).toMatchObject({ transactions: 1, tornTail: null, repairs: [] });
    expect(snapshotFiles(dir)).toEqual(before);
    await wal.close();
  });

  it('reads a small segment with a buffer its size, not a whole chunk (12,000 small segments once cost 12 GiB of garbage)', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 1024, preallocate: false });
    while (wal.activeSegmentId < 6) await wal.commit([Buffer.alloc(200, 7)]);
    await wal.close();
    const largest = Math.max(...segmentNames(dir).map((name) => fs.statSync(path.join(dir, name)).size));
    const buffers: number[] = [];
    const io: WalIo = {
      ...jsIo,
      async: {
        ...jsIo.async,
        read: (fd, target, offset, length, position) => {
          buffers.push(length);
          return jsIo.async.read(fd, target, offset, length, position);
        },
      },
    };
    const { events } = await replayDir(dir, { io });
    expect(events.length).toBeGreaterThan(0);
    expect(buffers.length).toBeGreaterThanOrEqual(6);
    // A refill near the end of a file reads what is left, and at least 4 KiB (the file may have grown).
    expect(Math.max(...buffers)).toBeLessThanOrEqual(Math.max(largest, 4096));
  });
});
