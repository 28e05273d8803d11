import fs from 'node:fs';
import path from 'node:path';
import { expect, onTestFinished, vi } from 'vitest';
import { readWal, type WalRecord } from '../../src/index.js';

/*
 * Makes a readWal follower's polls observable, so a test can wait for "the
 * follower has looked again" instead of sleeping. Every poll starts by
 * listing the log directory (fs.promises.readdir, src/follow.ts); so does
 * the first scan of readWal and a Wal's open, so only count while no Wal
 * opens that directory. Polls of one follower run one after the other, and
 * the records of a poll are handed to the consumer before the next starts.
 *
 * `hold()` makes every listing of the directory wait until `release()`: the
 * followers stop at the start of their next poll, and see the directory as it
 * is at the release.
 */
export interface PollWatch {
  /** Listings of the directory so far. */
  readonly count: number;
  /** Resolves once a poll that started after this call has finished (the next one has started). */
  nextPollDone(): Promise<void>;
  /** Resolves once `count` reaches `n`. */
  reached(n: number): Promise<void>;
  hold(): void;
  release(): void;
}

export function watchPolls(dir: string): PollWatch {
  const root = path.resolve(dir);
  const readdir = fs.promises.readdir.bind(fs.promises);
  let count = 0;
  let gate: { promise: Promise<void>; open: () => void } | null = null;
  const spy = vi.spyOn(fs.promises, 'readdir').mockImplementation((async (...args: Parameters<typeof readdir>) => {
    if (path.resolve(String(args[0])) === root) {
      count++;
      if (gate !== null) await gate.promise;
    }
    return readdir(...args);
  }) as typeof fs.promises.readdir);
  onTestFinished(() => {
    gate?.open();
    spy.mockRestore();
  });
  const reached = (n: number) => expect.poll(() => count, { timeout: 10_000, interval: 2 }).toBeGreaterThanOrEqual(n);
  return {
    get count() {
      return count;
    },
    // The poll under way now may have read before the caller's change: the next one started after it.
    nextPollDone: () => reached(count + 2),
    reached,
    hold() {
      if (gate !== null) return;
      let open!: () => void;
      const promise = new Promise<void>((resolve) => (open = resolve));
      gate = { promise, open };
    },
    release() {
      gate?.open();
      gate = null;
    },
  };
}

/** Follows `dir` in the background, collecting records until stopped; `ended` settles with the iteration. */
export function startFollowing(dir: string, fromLsn = 1, pollMs = 5) {
  const controller = new AbortController();
  const records: WalRecord[] = [];
  const done = (async () => {
    for await (const record of readWal(dir, { fromLsn, follow: true, signal: controller.signal, pollMs })) records.push(record);
  })();
  // A test that fails before stopping its follower must not leave it polling a removed directory.
  done.catch(() => undefined);
  onTestFinished(() => controller.abort());
  return { records, done, stop: () => (controller.abort(), done) };
}

/**
 * Resolves once something in this process arms a timer of a little under
 * `ms` (more than half of it): a follower going to sleep for the rest of its
 * poll interval (src/readers.ts). Install it before the follower starts.
 */
export function timerArmed(ms: number): Promise<void> {
  const setTimer = globalThis.setTimeout;
  return new Promise((resolve) => {
    const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((...args: Parameters<typeof setTimeout>) => {
      // A follower sleeps what is left of its interval: a little under `ms`, never more.
      const delay = args[1] ?? 0;
      if (delay <= ms && delay > ms / 2) resolve();
      return setTimer(...args);
    }) as typeof setTimeout);
    onTestFinished(() => spy.mockRestore());
  });
}
