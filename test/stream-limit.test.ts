import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Wal, readTransactions } from '../src/index.js';
import { resolveIo } from '../src/io/resolve.js';
import type { WalIo } from '../src/io/types.js';
import { isCommitRun, streamLog, type StreamConfig } from '../src/read/log-stream.js';
import { segmentNames, tempDir } from './helpers/temp-dir.js';

/** A log of `count` one-event transactions over several 1 KiB segments, closed. */
async function writtenLog(count: number): Promise<string> {
  const dir = tempDir();
  const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 1024, sync: 'none' });
  for (let i = 0; i < count; i++) wal.commitSync([Buffer.from(`event ${i} ${'x'.repeat(80)}`)]);
  await wal.close();
  return dir;
}

/** `io` with every segment it opens for reading noted, in order. */
function noteOpens(io: WalIo, opened: string[]): WalIo {
  return {
    ...io,
    crc32: io.crc32.bind(io),
    ...(io.checkFrameCrcs === undefined ? {} : { checkFrameCrcs: io.checkFrameCrcs.bind(io) }),
    async: {
      ...io.async,
      openRead: (file: string) => {
        opened.push(path.basename(file));
        return io.async.openRead(file);
      },
    },
  };
}

describe('a transaction stream under a limit (a live Wal durable LSN)', () => {
  for (const backend of ['js', 'native'] as const) {
    for (const runs of [false, true]) {
      it(`reads no record above the limit until it moves (${backend}, ${runs ? "the shipper's runs" : 'one by one'})`, async () => {
        const dir = await writtenLog(60);
        const segments = segmentNames(dir);
        expect(segments.length).toBeGreaterThan(4);
        const all: Array<{ beginLsn: number; commitLsn: number }> = [];
        for await (const tx of readTransactions(dir)) all.push({ beginLsn: tx.beginLsn, commitLsn: tx.commitLsn });
        expect(all).toHaveLength(60);

        const opened: string[] = [];
        let limit = (all[2] as { commitLsn: number }).commitLsn;
        let release: () => void = () => undefined;
        let onWait: () => void = () => undefined;
        const config: StreamConfig = {
          io: noteOpens(resolveIo(backend), opened),
          dir,
          fromLsn: 1,
          scanFrom: null,
          recordsOnly: false,
          follow: false,
          signal: undefined,
          waitForMore: () => {
            onWait();
            return new Promise<void>((resolve) => {
              release = resolve;
            });
          },
          syncReads: false,
          limit: () => limit,
          ended: () => false,
          recent: null,
          ...(runs ? { keepBatches: true, reuseWindows: true } : {}),
        };
        const stream = runs ? streamLog({ ...config, commitRuns: true }) : streamLog(config);
        const handed: Array<{ beginLsn: number; commitLsn: number }> = [];
        let next: ReturnType<typeof stream.next> | null = null;
        /** Takes batches until the stream waits for the limit to move, or ends. */
        const takeUntilWait = async (): Promise<'waiting' | 'ended'> => {
          for (;;) {
            const waiting = new Promise<'waiting'>((resolve) => {
              onWait = () => resolve('waiting');
            });
            next ??= stream.next();
            const outcome = await Promise.race([next, waiting]);
            if (outcome === 'waiting') return 'waiting';
            next = null;
            if (outcome.done === true) return 'ended';
            for (const item of outcome.value.transactions) {
              if (isCommitRun(item)) {
                // A run's frames are consecutive one-frame transactions (three LSNs each): its last commit and how many.
                for (let i = item.count - 1; i >= 0; i--) handed.push({ beginLsn: item.commitLsn - 3 * i - 2, commitLsn: item.commitLsn - 3 * i });
              } else {
                handed.push({ beginLsn: item.beginLsn, commitLsn: item.commitLsn });
              }
            }
          }
        };

        // Up to the limit, then a wait: the next segments were never opened, their records never read.
        expect(await takeUntilWait()).toBe('waiting');
        expect(handed).toEqual(all.slice(0, 3));
        expect(opened).toEqual([segments[0]]);

        // Woken with the limit where it was (a live Wal wakes its readers at every write, durable or
        // not), it reads nothing and waits again.
        release();
        expect(await takeUntilWait()).toBe('waiting');
        expect(handed).toEqual(all.slice(0, 3));
        expect(opened).toEqual([segments[0]]);

        // The limit moves into a later segment: what lies up to it, and no further.
        const middle = Math.floor(all.length / 2);
        limit = (all[middle] as { commitLsn: number }).commitLsn;
        release();
        expect(await takeUntilWait()).toBe('waiting');
        expect(handed).toEqual(all.slice(0, middle + 1));
        expect(opened.length).toBeGreaterThan(1);
        expect(opened.length).toBeLessThan(segments.length);

        // No limit: the rest, in order, each once.
        limit = Number.POSITIVE_INFINITY;
        release();
        expect(await takeUntilWait()).toBe('ended');
        expect(handed).toEqual(all);
        expect(opened).toEqual(segments);
      });
    }
  }
});
