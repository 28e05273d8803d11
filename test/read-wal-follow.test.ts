import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Wal, WalError, readWal, type WalRecord } from '../src/index.js';
import { RecordKind } from '../src/format/constants.js';
import { segmentNames, tempDir } from './helpers/temp-dir.js';

/** Follows `dir` in the background, collecting records until aborted. */
function startFollowing(dir: string, fromLsn = 1) {
  const controller = new AbortController();
  const records: WalRecord[] = [];
  const done = (async () => {
    for await (const record of readWal(dir, { fromLsn, follow: true, signal: controller.signal, pollMs: 5 })) records.push(record);
  })();
  return { records, stop: () => (controller.abort(), done) };
}

describe('readWal({ follow: true })', () => {
  it('yields the records on disk, then each new one as a live Wal appends it, across rotation, until aborted', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 1024, sync: 'none' });
    await wal.commit([Buffer.from('before following')]);
    const follower = startFollowing(dir);
    for (let i = 0; i < 40; i++) {
      await wal.commit([Buffer.from(`live ${i} ${'w'.repeat(40)}`)]);
      if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 15));
    }
    expect(segmentNames(dir).length).toBeGreaterThan(3);
    const last = wal.nextLsn - 1;
    await expect.poll(() => follower.records.at(-1)?.lsn, { timeout: 5000, interval: 10 }).toBe(last);
    await follower.stop();
    expect(follower.records.map((record) => record.lsn)).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    const batches = follower.records.filter((record) => record.kind === RecordKind.MutationBatch);
    expect(batches.length).toBe(41);
    expect(batches[0]!.payload.subarray(8).toString()).toBe('before following');
    await wal.close();
  });

  it('keeps following after truncation deletes the segments it already read', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 1024, sync: 'none' });
    const follower = startFollowing(dir, 1);
    for (let i = 0; i < 30; i++) await wal.commit([Buffer.alloc(100, i)]);
    await expect.poll(() => follower.records.at(-1)?.lsn, { timeout: 5000, interval: 10 }).toBe(wal.nextLsn - 1);
    expect(await wal.truncateUpTo(wal.durableLsn)).toBeGreaterThan(0);
    for (let i = 0; i < 30; i++) await wal.commit([Buffer.alloc(100, i)]);
    await expect.poll(() => follower.records.at(-1)?.lsn, { timeout: 5000, interval: 10 }).toBe(wal.nextLsn - 1);
    await follower.stop();
    const lsns = follower.records.map((record) => record.lsn);
    expect(lsns).toEqual(Array.from({ length: lsns.length }, (_, i) => i + 1));
    await wal.close();
  });

  it('never yields a half-written frame: a frame appears only once it is whole', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', sync: 'none' });
    await wal.commit([Buffer.from('whole')]);
    await wal.close();
    const follower = startFollowing(dir);
    await expect.poll(() => follower.records.length, { timeout: 5000, interval: 10 }).toBe(3);
    // The next transaction's frames, taken from a twin log, land in two halves as a slow write would.
    const file = `${dir}/0000000001.wal`;
    const donor = tempDir();
    const { wal: other } = await Wal.open({ dir: donor, io: 'js', sync: 'none' });
    await other.commit([Buffer.from('whole')]);
    await other.commit([Buffer.from('arrives in two halves')]);
    await other.close();
    const donorBytes = fs.readFileSync(`${donor}/0000000001.wal`);
    const dataEnd = follower.records.at(-1)!.offset + 25;
    const frames = donorBytes.subarray(dataEnd, dataEnd + 25 + (25 + 4 + 4 + 21) + 25); // TxBegin, MutationBatch, TxCommit
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, frames.subarray(0, 40), 0, 40, dataEnd);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(follower.records.length).toBe(4); // the TxBegin (25 bytes) is whole; the batch is not
    fs.writeSync(fd, frames.subarray(40), 0, frames.length - 40, dataEnd + 40);
    fs.closeSync(fd);
    await expect.poll(() => follower.records.length, { timeout: 5000, interval: 10 }).toBe(6);
    await follower.stop();
    expect(follower.records.map((record) => record.kind)).toEqual([2, 6, 3, 2, 6, 3]);
  });

  it('bad options give WAL_INVALID_OPTIONS', async () => {
    const iterate = async (options: object) => {
      for await (const record of readWal(tempDir(), options)) void record;
    };
    await expect(iterate({ fromLsn: 0 })).rejects.toBeInstanceOf(WalError);
    await expect(iterate({ follow: 'yes' })).rejects.toMatchObject({ code: 'WAL_INVALID_OPTIONS' });
    await expect(iterate({ signal: {} })).rejects.toMatchObject({ code: 'WAL_INVALID_OPTIONS' });
    await expect(iterate({ pollMs: 0 })).rejects.toMatchObject({ code: 'WAL_INVALID_OPTIONS' });
  });
});
