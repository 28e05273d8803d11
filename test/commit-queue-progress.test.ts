import { expect, it } from 'vitest';
import { CommitQueue } from '../src/commit-queue.js';
import { WalError } from '../src/errors.js';

/*
 * An in-process reader (wal.readTransactions, ship(wal)) reads only up to
 * durableLsn and sleeps on the queue's progress(): it must wake when
 * durableLsn moves, when the log is poisoned or closed, and not at a write
 * alone, which gives it nothing to read (a group-mode writer writes
 * thousands of times between two fsyncs).
 */

/** Whether `promise` has settled once the microtasks queued so far have run. */
async function settled(promise: Promise<void>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

it('progress() resolves at an fsync, not at a write alone', async () => {
  const queue = new CommitQueue(0);
  const before = queue.progressCount;
  const waiting = queue.progress();
  queue.written(10);
  queue.written(20);
  expect(await settled(waiting)).toBe(false);
  expect(queue.progressCount).toBe(before);
  queue.durable(20);
  expect(await settled(waiting)).toBe(true);
  expect(queue.progressCount).toBe(before + 1);
});

it('progress() resolves when the log is poisoned, and at a close (notifyProgress)', async () => {
  const poisoned = new CommitQueue(0);
  const waitingForPoison = poisoned.progress();
  poisoned.poison(new WalError('WAL_IO', 'write failed'));
  expect(await settled(waitingForPoison)).toBe(true);

  const closing = new CommitQueue(0);
  const waitingForClose = closing.progress();
  closing.notifyProgress();
  expect(await settled(waitingForClose)).toBe(true);
});
