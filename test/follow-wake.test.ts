import fs from 'node:fs';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { Wal, readTransactions, readWal } from '../src/index.js';
import { events, texts } from './helpers/bytes.js';
import { tempDir } from './helpers/temp-dir.js';

/*
 * An out-of-process follower sleeps between polls, and the directory's change
 * notification wakes it (src/read/directory-changes.ts): with a poll interval
 * of a minute, each commit must still arrive within seconds. Where no
 * notification can be had, it polls as documented.
 */

const MINUTE = 60_000;

/** Follows `dir` with readTransactions at `pollMs`, collecting event texts until stopped. */
function follow(dir: string, pollMs: number) {
  const controller = new AbortController();
  const seen: string[] = [];
  const done = (async () => {
    for await (const tx of readTransactions(dir, { follow: true, fromLsn: 1, pollMs, signal: controller.signal })) seen.push(...texts(tx.events));
  })();
  done.catch(() => undefined);
  onTestFinished(() => controller.abort());
  return { seen, stop: () => (controller.abort(), done) };
}

describe('a follower in another process than the writer', () => {
  it('is woken by the change of the directory: commits arrive long before the next poll', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 1024, sync: 'per-commit' });
    await wal.commit(events('before'));
    const follower = follow(dir, MINUTE);
    await expect.poll(() => follower.seen, { timeout: 5000, interval: 5 }).toEqual(['before']);
    const written = ['before'];
    // 1 KiB segments: some of these land in segments created after the follower went to sleep.
    for (let i = 0; i < 20; i++) {
      const text = `woken ${i} ${'w'.repeat(100)}`;
      written.push(text);
      await wal.commit(events(text));
      await expect.poll(() => follower.seen.length, { timeout: 5000, interval: 5 }).toBe(written.length);
    }
    expect(follower.seen).toEqual(written);
    await follower.stop();
    await wal.close();
  });

  it('sees a commit that lands after its read found nothing and before its watch began', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', sync: 'per-commit' });
    await wal.commit(events('before'));
    // The follower starts its watch only once a read has found nothing new:
    // this commit lands in that gap, just before the watch is in place.
    const watch = fs.watch.bind(fs);
    const late = vi.spyOn(fs, 'watch').mockImplementation(((...args: Parameters<typeof fs.watch>) => {
      wal.commitSync(events('in the gap'));
      return watch(...args);
    }) as typeof fs.watch);
    onTestFinished(() => late.mockRestore());
    const follower = follow(dir, MINUTE);
    await expect.poll(() => follower.seen, { timeout: 5000, interval: 5 }).toEqual(['before', 'in the gap']);
    expect(late).toHaveBeenCalledTimes(1);
    await follower.stop();
    await wal.close();
  });

  it('releases its watch when the iteration ends, and a reader never iterated holds none', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', sync: 'none' });
    await wal.commit(events('one'));
    const watch = fs.watch.bind(fs);
    let closed = 0;
    const watches = vi.spyOn(fs, 'watch').mockImplementation(((...args: Parameters<typeof fs.watch>) => {
      const watcher = watch(...args);
      watcher.on('close', () => closed++);
      return watcher;
    }) as typeof fs.watch);
    onTestFinished(() => watches.mockRestore());
    for (let i = 0; i < 20; i++) {
      const follower = follow(dir, MINUTE);
      await expect.poll(() => follower.seen.length, { timeout: 5000, interval: 2 }).toBe(1);
      await expect.poll(() => watches.mock.calls.length, { timeout: 5000, interval: 2 }).toBe(i + 1);
      await follower.stop();
      await expect.poll(() => closed, { timeout: 5000, interval: 2 }).toBe(i + 1);
      readTransactions(dir, { follow: true });
      readWal(dir, { follow: true });
    }
    expect(watches).toHaveBeenCalledTimes(20);
    await wal.close();
  });

  it('polls every pollMs where the directory cannot be watched', async () => {
    const dir = tempDir();
    const refused = vi.spyOn(fs, 'watch').mockImplementation(() => {
      throw Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), { code: 'ENOSPC' });
    });
    onTestFinished(() => refused.mockRestore());
    const { wal } = await Wal.open({ dir, io: 'js', sync: 'per-commit' });
    const follower = follow(dir, 20);
    for (let i = 0; i < 5; i++) {
      await wal.commit(events(`polled ${i}`));
      await expect.poll(() => follower.seen.length, { timeout: 5000, interval: 5 }).toBe(i + 1);
    }
    expect(refused).toHaveBeenCalled();
    await follower.stop();
    await wal.close();
  });
});
