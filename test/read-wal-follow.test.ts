import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Wal, WalError, readWal, replayDir, type WalRecord } from '../src/index.js';
import { FRAME_OVERHEAD, RecordKind } from '../src/format/constants.js';
import { committedTx, craftFrame, craftSegment, segmentPath, tornWrite, writeSegment } from './helpers/craft.js';
import { startFollowing, timerArmed, watchPolls } from './helpers/follow-polls.js';
import { expectDense, lsnSpan } from './helpers/lsn-spans.js';
import { segmentNames, tempDir } from './helpers/temp-dir.js';

describe('readWal({ follow: true })', () => {
  it('yields the records on disk, then each new one as a live Wal appends it, across rotation, until aborted', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 1024, sync: 'none' });
    await wal.commit([Buffer.from('before following')]);
    const follower = startFollowing(dir);
    for (let i = 0; i < 40; i++) {
      await wal.commit([Buffer.from(`live ${i} ${'w'.repeat(40)}`)]);
      // Every tenth commit, let the follower catch up: it reads the log live, across each rotation.
      if (i % 10 === 0) await expect.poll(() => follower.records.at(-1)?.lsn, { timeout: 5000, interval: 2 }).toBe(wal.nextLsn - 1);
    }
    expect(segmentNames(dir).length).toBeGreaterThan(3);
    const last = wal.nextLsn - 1;
    await expect.poll(() => follower.records.at(-1)?.lsn, { timeout: 5000, interval: 10 }).toBe(last);
    await follower.stop();
    expectDense(follower.records);
    expect(follower.records.at(-1)!.lsn).toBe(last);
    const commits = follower.records.filter((record) => record.kind === RecordKind.Commit);
    expect(commits.length).toBe(41);
    expect(commits[0]!.payload.subarray(8).toString()).toBe('before following');
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
    expectDense(follower.records);
    await wal.close();
  });

  it('never yields a half-written frame: a frame appears only once it is whole', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', sync: 'none' });
    await wal.commit([Buffer.from('whole')]);
    await wal.close();
    const polls = watchPolls(dir);
    const follower = startFollowing(dir);
    await expect.poll(() => follower.records.length, { timeout: 5000, interval: 10 }).toBe(1);
    // The next transaction's frames, taken from a twin log, land in two halves as a slow write would.
    const file = `${dir}/0000000001.wal`;
    const donor = tempDir();
    const { wal: other } = await Wal.open({ dir: donor, io: 'js', sync: 'none' });
    await other.commit([Buffer.from('whole')]);
    const tx = other.begin();
    tx.append(Buffer.from('arrives in two halves'));
    await tx.commit();
    await other.close();
    const donorBytes = fs.readFileSync(`${donor}/0000000001.wal`);
    const whole = follower.records.at(-1)!;
    const dataEnd = whole.offset + FRAME_OVERHEAD + whole.payload.length;
    const frames = donorBytes.subarray(dataEnd, dataEnd + 25 + (25 + 21) + 25); // TxBegin, Mutation, TxCommit
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, frames.subarray(0, 40), 0, 40, dataEnd);
    await polls.nextPollDone();
    expect(follower.records.length).toBe(2); // the TxBegin (25 bytes) is whole; the Mutation is not
    fs.writeSync(fd, frames.subarray(40), 0, frames.length - 40, dataEnd + 40);
    fs.closeSync(fd);
    await expect.poll(() => follower.records.length, { timeout: 5000, interval: 10 }).toBe(4);
    await follower.stop();
    expect(follower.records.map((record) => record.kind)).toEqual([7, 2, 1, 3]);
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

  it('starts on a directory with no segment yet and picks the log up once a Wal creates it', async () => {
    const dir = tempDir();
    const polls = watchPolls(dir);
    const follower = startFollowing(dir);
    await polls.reached(3); // the first scan's listing, then a whole poll of the empty directory
    const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 1024, sync: 'none' });
    for (let i = 0; i < 10; i++) await wal.commit([Buffer.from(`late ${i}`)]);
    await expect.poll(() => follower.records.length, { timeout: 5000, interval: 10 }).toBe(10);
    await follower.stop();
    expect(follower.records.map(lsnSpan)).toEqual(Array.from({ length: 10 }, (_, i) => [3 * i + 1, 3 * i + 3]));
    await wal.close();
  });

  it('an abort ends the iteration at once, even in the middle of a long poll interval', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', sync: 'none' });
    await wal.commit([Buffer.from('one')]);
    const asleep = timerArmed(60_000);
    const follower = startFollowing(dir, 1, 60_000);
    await expect.poll(() => follower.records.length, { timeout: 5000, interval: 10 }).toBe(1);
    await asleep; // now asleep until the next poll, a minute away
    const started = performance.now();
    await follower.stop();
    expect(performance.now() - started).toBeLessThan(500);
    await wal.close();
  });

  it('a follower that fell behind a truncation: fine when it did not want those records, an error when it did', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 1024, sync: 'none' });
    await wal.commit([Buffer.from('first')]);
    // Both followers read LSN 1..3 (one Commit record), then are held at the start of their next poll while the Wal
    // writes far ahead and truncates; released, they find the log truncated.
    const polls = watchPolls(dir);
    const wantsLater = startFollowing(dir, 400);
    const wantsAll = startFollowing(dir, 1);
    const wantsAllEnd = wantsAll.done.then(() => 'ended normally', (error: unknown) => error);
    await expect.poll(() => wantsAll.records.length, { timeout: 5000, interval: 10 }).toBe(1);
    polls.hold();
    await polls.reached(polls.count + 2); // each follower has started a poll since, and waits in it
    while (wal.nextLsn <= 600) await wal.commit([Buffer.alloc(100, 1)]);
    expect(await wal.truncateUpTo(300)).toBeGreaterThan(0);
    expect(Number.parseInt(segmentNames(dir)[0]!, 10)).toBeGreaterThan(1);
    polls.release();
    const last = wal.nextLsn - 1;
    await expect.poll(() => wantsLater.records.at(-1)?.lsn, { timeout: 10_000, interval: 20 }).toBe(last);
    expectDense(wantsLater.records, 400);
    expect(await wantsAllEnd).toMatchObject({ code: 'WAL_LSN_TRUNCATED', message: expect.stringContaining('truncated before this reader read them') });
    // It read on in the segment it had open (deleted, its bytes still there) up to the gap, and no further.
    expect(wantsAll.records.length).toBeGreaterThanOrEqual(1);
    expectDense(wantsAll.records);
    expect(wantsAll.records.at(-1)!.lsn).toBeLessThan(300);
    await wantsLater.stop();
    await wal.close();
  });

  it('follows frames of every size: many small ones in one poll, and one larger than any read window', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 64 * 1024, sync: 'none' });
    const polls = watchPolls(dir);
    const follower = startFollowing(dir, 1, 20);
    await polls.reached(2); // past the first scan, following: the frames below are read by polls
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    const events = [...Array.from({ length: 300 }, (_, i) => Buffer.from(`small ${i}`)), big, Buffer.from('after the big one')];
    for (const event of events) wal.begin().append(event);
    await wal.flush();
    await expect.poll(() => follower.records.length, { timeout: 10_000, interval: 10 }).toBe(events.length * 2);
    await follower.stop();
    const mutations = follower.records.filter((record) => record.kind === RecordKind.Mutation);
    expect(mutations).toHaveLength(events.length);
    // Buffer.equals: vitest's deep equality walks a 3 MiB buffer byte by byte, slowly.
    expect(mutations.every((record, i) => record.payload.equals(events[i]!))).toBe(true);
    expect(follower.records.map((record) => record.lsn)).toEqual(Array.from({ length: events.length * 2 }, (_, i) => i + 1));
    await wal.close();
  });

  it('waits on bytes that are not a frame yet in the last segment, but calls them damage once a later segment exists', async () => {
    const dir = tempDir();
    writeSegment(dir, 1, craftSegment(1, committedTx(1, 'one')));
    const polls = watchPolls(dir);
    const follower = startFollowing(dir);
    const end = follower.done.then(() => 'ended normally', (error: unknown) => error);
    await expect.poll(() => follower.records.length, { timeout: 5000, interval: 10 }).toBe(3);
    const first = `${dir}/0000000001.wal`;
    const dataEnd = fs.statSync(first).size;
    fs.appendFileSync(first, Buffer.from([99, 0, 0, 0, 1, 4, 0])); // a frame's start, as a torn write leaves it
    await polls.nextPollDone();
    expect(follower.records.length).toBe(3); // not yielded, and not an error: it may still be written
    writeSegment(dir, 2, craftSegment(4, committedTx(4, 'two')));
    expect(await end).toMatchObject({ code: 'WAL_MALFORMED', file: first, offset: dataEnd, lsn: 4 });
    expect(follower.records.map((record) => record.lsn)).toEqual([1, 2, 3]);
  });
});

// A power cut while a Mutation frame was being written into a preallocated
// segment can leave it whole-looking: length, kind and LSN right (the first
// sector made it), the CRC there too (the last sector), a middle sector still
// zeros. Nothing but the CRC tells it from a record; readFrame's payload checks
// cannot (a Mutation's payload is any bytes).
describe('a single-event Mutation frame torn inside a preallocated active segment, whose only defect is its CRC', () => {
  /** A closed log of one committed transaction (LSN 1..3), preallocated to 64 KiB, and the frames of the next one. */
  async function logAndNextFrames() {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', sync: 'per-commit', segmentBytes: 64 * 1024 });
    await wal.commit([Buffer.from('whole')]);
    await wal.close();
    const file = segmentPath(dir, 1);
    expect(fs.statSync(file).size).toBe(64 * 1024);
    const records: WalRecord[] = [];
    for await (const record of readWal(dir)) records.push(record);
    const whole = records.at(-1)!;
    const dataEnd = whole.offset + FRAME_OVERHEAD + whole.payload.length; // after the transaction's Commit record
    const begin = craftFrame({ kind: RecordKind.TxBegin, lsn: 4 });
    const payload = Buffer.alloc(1500, 'm');
    const mutation = craftFrame({ kind: RecordKind.Mutation, lsn: 5, txBeginLsn: 4, payload });
    const mutationAt = dataEnd + begin.length;
    return { dir, file, dataEnd, begin, mutation, mutationAt, payload, torn: tornWrite(mutation, mutationAt) };
  }

  function writeAt(file: string, bytes: Buffer, position: number): void {
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, bytes, 0, bytes.length, position);
    fs.closeSync(fd);
  }

  it('a follower does not yield it, waits, and yields the frame once it is whole', async () => {
    const log = await logAndNextFrames();
    const polls = watchPolls(log.dir);
    const follower = startFollowing(log.dir);
    await expect.poll(() => follower.records.length, { timeout: 5000, interval: 5 }).toBe(1);
    writeAt(log.file, Buffer.concat([log.begin, log.torn]), log.dataEnd);
    await polls.nextPollDone();
    expect(follower.records.map((record) => record.lsn)).toEqual([3, 4]);
    writeAt(log.file, log.mutation, log.mutationAt); // the rest of the write lands
    await expect.poll(() => follower.records.length, { timeout: 5000, interval: 5 }).toBe(3);
    await follower.stop();
    expect(follower.records[2]).toMatchObject({ kind: RecordKind.Mutation, lsn: 5, txBeginLsn: 4, offset: log.mutationAt });
    expect(follower.records[2]!.payload.equals(log.payload)).toBe(true);
  });

  it('readWal without follow stops before it, and replayDir reports it as a torn tail (CRC mismatch)', async () => {
    const log = await logAndNextFrames();
    writeAt(log.file, Buffer.concat([log.begin, log.torn]), log.dataEnd);
    const lsns: number[] = [];
    for await (const record of readWal(log.dir)) lsns.push(record.lsn);
    expect(lsns).toEqual([3, 4]);
    const { events, recovery } = await replayDir(log.dir);
    expect(events).toEqual([Buffer.from('whole')]);
    expect(recovery.tornTail).toMatchObject({ segmentId: 1, offset: log.mutationAt, cause: expect.stringMatching(/^WAL_CRC_MISMATCH/) });
  });
});
