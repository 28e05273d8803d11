import type { AsyncIoOps, WalIo } from '../../src/io/types.js';

/*
 * Deterministic async io for tests that must make the same io calls in the
 * same order on every run (power-loss recording, fault injection at the Nth
 * call).
 *
 * A Wal runs several async io programs at once: the drain loop, the spare
 * segment's preparation in the background, a truncation. On a real backend
 * their calls overlap on the thread pool and complete in whatever order the
 * disk and the scheduler allow, so the order of calls (and of what a test io
 * records) changes from run to run. Here every async call waits for the one
 * before it to settle, and then for one turn of the event loop
 * (setImmediate), so every continuation that settling set off has run and
 * made its next call first. The order of calls is then decided by the
 * programs alone, never by how long a call took, provided nothing else
 * schedules work on a timer (use a group interval no run reaches, and
 * explicit sync() calls instead).
 */
export function serializeAsync(ops: AsyncIoOps): AsyncIoOps {
  let tail: Promise<unknown> = Promise.resolve();
  const run = <T>(task: () => Promise<T>): Promise<T> => {
    const result = tail.then(task);
    tail = result.then(nextTurn, nextTurn);
    return result;
  };
  return Object.fromEntries(
    Object.entries(ops).map(([op, fn]) => [op, (...args: unknown[]) => run(() => (fn as (...a: unknown[]) => Promise<unknown>)(...args))]),
  ) as unknown as AsyncIoOps;
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** `io` with its async calls made one at a time, as `serializeAsync` explains. */
export function serialized(io: WalIo): WalIo {
  return { name: io.name, sync: io.sync, async: serializeAsync(io.async), crc32: io.crc32 };
}
