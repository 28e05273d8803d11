import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Wal, readTransactions, readWal, replayDir } from '../src/index.js';
import { events, texts } from './helpers/bytes.js';
import { runCli } from './helpers/cli.js';
import { segmentPath } from './helpers/craft.js';
import { tempDir } from './helpers/temp-dir.js';

/*
 * Segments may be as large as `segmentBytes` allows (4 GiB). Every reader
 * reads a segment in bounded chunks, so one over 2 GiB (the most a single
 * node:fs read takes) opens, replays, follows and verifies, in memory far
 * below its size. Sync 'none' only reserves the space (fallocate), so the
 * 2.5 GiB file costs no real writes.
 */
const SEGMENT_BYTES = 2.5 * 1024 ** 3;
/** A whole-segment read would need the segment's size; a chunked one needs a chunk and a frame. */
const MEMORY_BOUND_BYTES = 256 * 1024 * 1024;

describe('a segment over 2 GiB', () => {
  it('opens, replays, follows and verifies, with memory far below its size', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'native', sync: 'none', segmentBytes: SEGMENT_BYTES });
    await wal.commit(events('one'));
    await wal.close();
    expect(fs.statSync(segmentPath(dir, 1)).size).toBe(SEGMENT_BYTES);

    const rssBefore = process.memoryUsage().rss;
    for (const io of ['native', 'js'] as const) {
      const { wal: reopened, events: replayed } = await Wal.open({ dir, io, sync: 'none', segmentBytes: SEGMENT_BYTES });
      expect(texts(replayed)).toEqual(io === 'native' ? ['one'] : ['one', 'native']);
      await reopened.commit(events(io));
      await reopened.close();
    }
    const replay = await replayDir(dir);
    expect(texts(replay.events)).toEqual(['one', 'native', 'js']);
    const transactions = [];
    for await (const tx of readTransactions(dir)) transactions.push(texts(tx.events));
    expect(transactions).toEqual([['one'], ['native'], ['js']]);

    const controller = new AbortController();
    const followed: number[] = [];
    for await (const record of readWal(dir, { follow: true, signal: controller.signal, pollMs: 5 })) {
      followed.push(record.lsn);
      if (record.lsn === 9) controller.abort();
    }
    expect(followed).toEqual([3, 6, 9]); // one Commit record per commit
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(MEMORY_BOUND_BYTES);

    const verify = await runCli('verify', dir);
    expect(verify.stdout).toMatch(/^ok: 1 segment, 3 records, LSN 1\.\.9/);
    expect(verify.code).toBe(0);
  }, 180_000);
});
