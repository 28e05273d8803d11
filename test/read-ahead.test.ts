import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Wal, WalError, readTransactions, replayDir } from '../src/index.js';
import type { WalIo } from '../src/io/types.js';
import { BACKENDS } from './helpers/backends.js';
import { FaultIo } from './helpers/fault-io.js';
import { segmentNames, tempDir } from './helpers/temp-dir.js';

/*
 * A reader that goes through whole segments (open's replay, replayDir, a CLI
 * scan) reads the next chunk while it parses the current one
 * (src/read/segment-source.ts, `readAhead`), carrying the end of one chunk in
 * front of the next. Frames straddle chunk boundaries, some are longer than a
 * chunk and its carry room, and with onReplay the same memory is reused
 * segment after segment: every event must come out exactly as written.
 */

const SIZES = [100, 5000, 300_000, 1_500_000, 70, 900_000, 2_300_000, 40_000];

function eventAt(i: number): Buffer {
  const bytes = Buffer.alloc(SIZES[i % SIZES.length]!);
  for (let at = 0; at < bytes.length; at += 4) bytes.writeUInt32LE((i * 2_654_435_761 + at) >>> 0, Math.min(at, bytes.length - 4));
  return bytes;
}

const digest = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A log of several 8 MiB segments: 40 commits of one or two events of every size above. */
async function writeLog(io: WalIo): Promise<{ dir: string; expected: string[] }> {
  const dir = tempDir();
  const { wal } = await Wal.open({ dir, io, sync: 'none', segmentBytes: 8 * 1024 * 1024 });
  const expected: string[] = [];
  for (let i = 0; i < 40; i++) {
    const batch = i % 3 === 0 ? [eventAt(i), eventAt(i + 1)] : [eventAt(i)];
    await wal.commit(batch);
    expected.push(...batch.map(digest));
  }
  await wal.close();
  return { dir, expected };
}

/** `io` telling how many async reads are in flight. */
function reading(io: WalIo): { io: WalIo; inFlight: () => number } {
  let inFlight = 0;
  return {
    inFlight: () => inFlight,
    io: {
      ...io,
      name: 'reading',
      async: {
        ...io.async,
        read: async (...args) => {
          inFlight++;
          try {
            return await io.async.read(...args);
          } finally {
            inFlight--;
          }
        },
      },
    },
  };
}

describe.each(BACKENDS)('reading ahead on the $name backend', ({ io }) => {
  it('replays frames of every size across chunk boundaries exactly as written, with onReplay (memory reused) and without', async () => {
    const { dir, expected } = await writeLog(io());
    const handed: string[] = [];
    await replayDir(dir, { io: io(), onReplay: (events) => void handed.push(...events.map(digest)) });
    expect(handed).toEqual(expected);
    const { events } = await replayDir(dir, { io: io() });
    expect(events.map(digest)).toEqual(expected);
    const { events: reopened, wal } = await Wal.open({ dir, io: io(), segmentBytes: 8 * 1024 * 1024 });
    expect(reopened.map(digest)).toEqual(expected);
    await wal.close();
    const blocking = Wal.openSync({ dir, io: io(), segmentBytes: 8 * 1024 * 1024 });
    expect(blocking.events.map(digest)).toEqual(expected);
    blocking.wal.closeSync();
  });

  it('reads the next chunk while the current one is parsed', async () => {
    const { dir, expected } = await writeLog(io());
    const observed = reading(io());
    let handedWhileReading = 0;
    const handed: string[] = [];
    await replayDir(dir, {
      io: observed.io,
      checkpointLsn: 0,
      onReplay: (events) => {
        if (observed.inFlight() > 0) handedWhileReading++;
        handed.push(...events.map(digest));
      },
    });
    expect(handed).toEqual(expected);
    // Without reading ahead a transaction is handed over only once the read holding it is done, and none is in flight.
    expect(handedWhileReading).toBeGreaterThan(10);
  });

  it('a durable-only follower reads sealed segments ahead without fsyncing them, and fsyncs what it reads of the last one', async () => {
    // Small transactions in 1 MiB segments: a follower's batches (4,096 records) end inside sealed segments.
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io(), sync: 'none', segmentBytes: 1024 * 1024 });
    const expected: string[] = [];
    for (let i = 0; i < 24_000; i++) {
      const event = eventAt(i * SIZES.length); // 100 bytes, each its own
      wal.commitSync([event]);
      expected.push(digest(event));
    }
    await wal.close();
    const inner = io();
    const paths = new Map<number, string>();
    const synced: string[] = [];
    const observed = reading(inner);
    const recording: WalIo = {
      ...observed.io,
      async: {
        ...observed.io.async,
        openRead: async (path) => {
          const fd = await inner.async.openRead(path);
          paths.set(fd as number, path);
          return fd;
        },
        datasync: async (fd) => {
          synced.push(paths.get(fd as number)!);
          await inner.async.datasync(fd);
        },
      },
    };
    const stop = new AbortController();
    const handed: string[] = [];
    let handedWhileReading = 0;
    for await (const tx of readTransactions(dir, { io: recording, follow: true, durableOnly: true, fromLsn: 1, signal: stop.signal })) {
      if (observed.inFlight() > 0) handedWhileReading++;
      handed.push(...tx.events.map(digest));
      if (handed.length === expected.length) stop.abort();
    }
    expect(handed).toEqual(expected);
    const names = segmentNames(dir);
    expect(names.length).toBeGreaterThan(2);
    expect(new Set(synced.map((path) => path.split('/').at(-1)))).toEqual(new Set([names.at(-1)]));
    expect(handedWhileReading).toBeGreaterThan(5);
  });

  it('a failed read is WAL_IO whether it was read ahead or not; nothing is handed over wrong or missing', async () => {
    const { dir, expected } = await writeLog(io());
    const reads = new FaultIo(io());
    await replayDir(dir, { io: reads, checkpointLsn: 0 });
    const total = reads.count('read');
    expect(total).toBeGreaterThan(20);
    let refused = 0;
    for (let nth = 1; nth <= total; nth++) {
      const faulty = new FaultIo(io()).failNth('read', nth, { errno: 'EIO' });
      const handed: string[] = [];
      try {
        await replayDir(dir, { io: faulty, checkpointLsn: 0, onReplay: (events) => void handed.push(...events.map(digest)) });
        // Only a read nobody needed may fail unnoticed: one ahead of the end of the data.
        expect(handed).toEqual(expected);
      } catch (error) {
        expect(error).toBeInstanceOf(WalError);
        expect(error).toMatchObject({ code: 'WAL_IO', errno: expect.any(Number) });
        expect(handed).toEqual(expected.slice(0, handed.length));
        refused++;
      }
    }
    expect(refused).toBeGreaterThanOrEqual(total - 2);
  });
});
