import { describe, expect, it } from 'vitest';
import { Wal, WalError, type WalError as WalErrorType } from '../src/index.js';
import { BATCH_COUNT_BYTES, BATCH_ENTRY_OVERHEAD, FRAME_OVERHEAD } from '../src/format/constants.js';
import { BACKENDS } from './helpers/backends.js';
import { FaultIo } from './helpers/fault-io.js';
import { segmentNames, tempDir } from './helpers/temp-dir.js';

/*
 * wal.metrics() (issue 15, item 5): every figure is checked against what the
 * test itself knows it did (commits made, bytes of the frames, fsyncs counted
 * by a FaultIo, segment files on disk), never against a figure copied from a
 * run.
 */

/** The bytes of a Commit record holding one event of `eventBytes`. */
const commitRecordBytes = (eventBytes: number) => FRAME_OVERHEAD + BATCH_COUNT_BYTES + BATCH_ENTRY_OVERHEAD + eventBytes;

const event = (i: number, bytes = 40) => Buffer.alloc(bytes, i);

describe.each(BACKENDS)('wal.metrics() on the $name backend', ({ io }) => {
  it('per-commit: every commit written and fsync’d on its own, counted once; bytes are the frames; the fsyncs are the ones made', async () => {
    const faulty = new FaultIo(io());
    const { wal } = await Wal.open({ dir: tempDir(), io: faulty, sync: 'per-commit' });
    const empty = wal.metrics();
    expect(empty).toMatchObject({ commits: 0, bytesWritten: 0, rotations: 0, msSinceLastFsync: null, waitingForWrite: 0, waitingForFsync: 0, poisoned: false });
    expect(empty.fsyncLatencyUs).toEqual({ count: 0, p50: 0, p99: 0, max: 0, mean: 0 });
    const fsyncsBefore = faulty.fsyncs;
    for (let i = 0; i < 20; i++) await wal.commit([event(i)]);
    const figures = wal.metrics();
    expect(figures.commits).toBe(20);
    expect(figures.bytesWritten).toBe(20 * commitRecordBytes(40));
    expect(figures.commitsPerWrite).toMatchObject({ count: 20, max: 1 });
    expect(figures.commitsPerFsync).toMatchObject({ count: 20, max: 1 });
    expect(figures.bytesPerWrite).toMatchObject({ count: 20, max: commitRecordBytes(40) });
    expect(figures.fsyncLatencyUs.count).toBe(faulty.fsyncs - fsyncsBefore);
    expect(figures.fsyncLatencyUs.p50).toBeGreaterThan(0);
    expect(figures.fsyncLatencyUs.max).toBeGreaterThanOrEqual(figures.fsyncLatencyUs.p99);
    expect(figures.msSinceLastFsync).toBeGreaterThanOrEqual(0);
    expect(figures).toMatchObject({ waitingForWrite: 0, waitingForFsync: 0, poisoned: false });
    await wal.close();
    // After close: the last figures, the close's own fsyncs included.
    expect(wal.metrics().commits).toBe(20);
  });

  it('group: commits of one tick share a write; written and not yet fsync’d they wait for the fsync, which then makes them all durable', async () => {
    const { wal } = await Wal.open({ dir: tempDir(), io: io(), sync: { mode: 'group', intervalMs: 60_000 } });
    const pending = Array.from({ length: 50 }, (_, i) => wal.commit([event(i)]));
    // Staged in this tick, not yet written.
    expect(wal.metrics()).toMatchObject({ commits: 0, waitingForWrite: 50, waitingForFsync: 0 });
    await Promise.all(pending);
    const written = wal.metrics();
    expect(written).toMatchObject({ commits: 50, waitingForWrite: 0, waitingForFsync: 50, msSinceLastFsync: null });
    expect(written.commitsPerWrite.max).toBeGreaterThan(1);
    expect(written.commitsPerFsync.count).toBe(0);
    await wal.sync();
    const durable = wal.metrics();
    expect(durable).toMatchObject({ waitingForFsync: 0, commitsPerFsync: { count: 1, max: 50 }, bytesPerFsync: { count: 1 } });
    // The max is exact (a percentile keeps three significant figures: test/histogram.test.ts).
    expect(durable.bytesPerFsync.max).toBe(50 * commitRecordBytes(40));
    expect(durable.msSinceLastFsync).toBeGreaterThanOrEqual(0);
    await wal.close();
  });

  it('counts the commits of every path: commitSync, begin() transactions, durable commits; not aborted ones', async () => {
    const { wal } = await Wal.open({ dir: tempDir(), io: io(), sync: 'none' });
    wal.commitSync([event(1)]);
    const tx = wal.begin();
    tx.append(event(2));
    tx.appendBatch([event(3), event(4)]);
    await tx.commit();
    const aborted = wal.begin();
    aborted.append(event(5));
    aborted.abort();
    await wal.commit([event(6)], { durable: true });
    await wal.flush();
    const figures = wal.metrics();
    expect(figures.commits).toBe(3);
    expect(figures).toMatchObject({ waitingForWrite: 0, waitingForFsync: 0 });
    await wal.close();
  });

  it('rotations are the segments sealed; truncations and segmentsDeleted the segments truncateUpTo removed', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io(), sync: 'none', segmentBytes: 1024 });
    for (let i = 0; i < 40; i++) await wal.commit([event(i, 150)]);
    await wal.flush();
    const segments = segmentNames(dir).length;
    expect(segments).toBeGreaterThan(3);
    expect(wal.metrics()).toMatchObject({ rotations: segments - 1, truncations: 0, segmentsDeleted: 0 });
    const removed = await wal.truncateUpTo(wal.nextLsn - 1);
    const deleted = segments - segmentNames(dir).length;
    expect(deleted).toBeGreaterThan(0);
    expect(removed).toBe(deleted);
    expect(wal.metrics()).toMatchObject({ truncations: 1, segmentsDeleted: deleted });
    // A truncation that deletes nothing is not counted.
    await wal.truncateUpTo(1);
    expect(wal.metrics()).toMatchObject({ truncations: 1, segmentsDeleted: deleted });
    await wal.close();
  });

  it('a failed fsync shows as poisoned', async () => {
    const faulty = new FaultIo(io());
    const { wal } = await Wal.open({ dir: tempDir(), io: faulty, sync: { mode: 'group', intervalMs: 10 } });
    const heard = new Promise<WalErrorType>((resolve) => wal.on('failure', resolve));
    faulty.failNthFsync(1, 'EIO');
    await wal.commit([event(1)]);
    await heard;
    expect(wal.metrics()).toMatchObject({ poisoned: true, commits: 1, waitingForFsync: 1 });
    await expect(wal.close()).rejects.toMatchObject({ code: 'WAL_POISONED' });
  });
});

describe('the metrics option', () => {
  it('metrics: false keeps no figures, and wal.metrics() says so with WAL_INVALID_OPTIONS; a non-boolean is refused at open', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, sync: 'none', metrics: false });
    await wal.commit([event(1)]);
    expect(() => wal.metrics()).toThrow(expect.objectContaining({ code: 'WAL_INVALID_OPTIONS', message: expect.stringMatching(/metrics: false/) }));
    await wal.close();
    const bad = Wal.open({ dir, metrics: 'yes' as unknown as boolean });
    await expect(bad).rejects.toBeInstanceOf(WalError);
    await expect(bad).rejects.toMatchObject({ code: 'WAL_INVALID_OPTIONS', message: expect.stringMatching(/metrics/) });
    // Nothing was lost by the refused open.
    const { wal: reopened, events } = await Wal.open({ dir });
    expect(events).toHaveLength(1);
    await reopened.close();
  });
});
