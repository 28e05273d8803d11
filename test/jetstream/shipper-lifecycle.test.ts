import { setImmediate as nextTurn } from 'node:timers/promises';
import { expect, it, vi } from 'vitest';
import type { WalError } from '../../src/errors.js';
import type { JetStreamConnection } from '../../src/jetstream/connect.js';
import type { SourceTransaction } from '../../src/jetstream/message-builder.js';
import type { PublishAck } from '../../src/jetstream/publish.js';
import { Shipper, type ShipperSource } from '../../src/jetstream/shipper.js';

/*
 * How a shipper ends: what its acknowledged() waiters hear after close() or a
 * detach, and the source readers of failed cycles, which must each be ended
 * (their finally releases a directory watch, the in-process copy of recent
 * writes, open segments). A fake stream and a fake source keep it
 * deterministic: the stream stays empty, the source yields what it is told.
 */

const STREAM = 'lifecycle';

/** An empty stream whose publishes do what `publish` says. */
function fakeConnection(publish: () => Promise<PublishAck>): JetStreamConnection {
  return {
    maxPayload: 1 << 20,
    jsm: {
      streams: {
        info: async () => ({ config: { name: STREAM }, state: { messages: 0, first_seq: 0, last_seq: 0 } }),
        getMessage: async () => null,
      },
    },
    js: { publish },
  } as unknown as JetStreamConnection;
}

function shipperOf(connection: JetStreamConnection, source: ShipperSource): Shipper {
  const config = { connection, stream: { name: STREAM }, subject: `${STREAM}.log`, logId: 'a'.repeat(32), maxBody: 64 * 1024 };
  return new Shipper({ ...config, window: 1, publishTimeoutMs: 1_000, retryBudgetMs: 60_000 }, source, () => undefined);
}

function tx(lsn: number): SourceTransaction {
  return { beginLsn: lsn, commitLsn: lsn, events: [Buffer.from(`event ${lsn}`)], batch: null, resume: { fromLsn: lsn + 1, scanFromLsn: lsn + 1 } };
}

function sourceOf(read: ShipperSource['read']): ShipperSource {
  return { read, start: async () => ({ fromLsn: 1, scanFromLsn: 1 }), endLsn: async () => 1_000_000, acknowledged: () => undefined };
}

/** Resolves at `ms`, or at once when `signal` aborts: how a following reader waits for more. */
function waitFor(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}

/** How `promise` stands once what is already due has run: resolved, rejected (code and message), or pending. */
function watch(promise: Promise<void>): () => Promise<string> {
  let state = 'pending';
  promise.then(
    () => (state = 'resolved'),
    (error: WalError) => (state = `rejected ${error.code}: ${error.message}`),
  );
  return async () => {
    await nextTurn();
    return state;
  };
}

it.each([
  { state: 'closed' as const, reason: undefined, message: /^rejected WAL_CLOSED: the shipper was closed;/ },
  { state: 'detached' as const, reason: 'over the limit of 100 bytes', message: /^rejected WAL_CLOSED: the shipper was detached \(over the limit of 100 bytes\)/ },
])('settles acknowledged() waiters made before, during and after close($state)', async ({ state, reason, message }) => {
  // Commit 1 is acknowledged at once; commit 2's publish is in flight until released, so close() waits for it.
  let release!: (ack: PublishAck) => void;
  const released = new Promise<PublishAck>((resolve) => (release = resolve));
  let publishes = 0;
  const connection = fakeConnection(() => (++publishes === 1 ? Promise.resolve({ stream: STREAM, seq: 1, duplicate: false }) : released));
  let more!: () => void;
  const moreCommitted = new Promise<void>((resolve) => (more = resolve));
  const source = sourceOf(async function* (_resume, signal) {
    yield [tx(1)];
    await moreCommitted;
    yield [tx(2)];
    await waitFor(60_000, signal);
  });
  const shipper = shipperOf(connection, source);
  await shipper.acknowledged(1);
  const before = watch(shipper.acknowledged(5));
  more();
  await vi.waitFor(() => expect(publishes).toBe(2));

  const closing = shipper.close(state, reason);
  const closed = watch(closing);
  const during = watch(shipper.acknowledged(5));
  expect(await closed()).toBe('pending');
  expect(await during()).toMatch(message);
  expect(await watch(shipper.acknowledged(1))()).toBe('resolved');

  release({ stream: STREAM, seq: 2, duplicate: false });
  await closing;
  expect(shipper.status()).toMatchObject({ state, acknowledgedCommitLsn: 2 });
  expect(await before()).toMatch(message);
  expect(await watch(shipper.acknowledged(5))()).toMatch(message);
  // Acknowledged while close() let the last publish settle.
  expect(await watch(shipper.acknowledged(2))()).toBe('resolved');
});

/**
 * A source that yields a transaction at a time, pausing between them as `pause` says, for ever: only
 * return() ends it. Counts the readers opened and the ones that reached their finally.
 */
function endlessSource(pause: (nth: number, signal: AbortSignal) => Promise<void>, onFinally: () => void = () => undefined) {
  const readers = { opened: 0, finalized: 0 };
  const source = sourceOf(async function* (resume, signal) {
    readers.opened++;
    try {
      for (let nth = 0; ; nth++) {
        yield [tx(resume.fromLsn + nth)];
        await pause(nth, signal);
      }
    } finally {
      readers.finalized++;
      onFinally();
    }
  });
  return { readers, source };
}

/** A follower's wait for more, which the abort ends at once: a failed cycle finds the reader suspended at its yield. */
const followerWait = (_nth: number, signal: AbortSignal) => waitFor(2, signal);
/**
 * A quick batch, then a read the abort does not cut short (20 ms, past the failing publish): the cycle fails
 * while a next() is in flight, and return() waits behind it.
 */
const slowRead = (nth: number) => new Promise<void>((resolve) => setTimeout(resolve, nth % 2 === 0 ? 1 : 20));

/** Each publish fails after a few ms, as a timeout would: every cycle fails and is retried. */
const failingPublishes = () =>
  fakeConnection(() => new Promise((_resolve, reject) => setTimeout(() => reject(new Error('publish timed out')), 5)));

it.each([
  { ending: 'suspended at its yield', pause: followerWait },
  { ending: 'with a next() in flight', pause: slowRead },
])('ends the source reader of every failed cycle, $ending', async ({ pause }) => {
  const { readers, source } = endlessSource(pause);
  const shipper = shipperOf(failingPublishes(), source);
  await vi.waitFor(() => expect(readers.opened).toBeGreaterThanOrEqual(3), { timeout: 5_000 });
  await shipper.close();
  expect(readers.opened).toBeGreaterThan(1);
  expect(readers.finalized).toBe(readers.opened);
});

it('reports the cycle failure, not the error of ending its reader', async () => {
  const { readers, source } = endlessSource(followerWait, () => {
    throw new Error('reader close failed');
  });
  const shipper = shipperOf(failingPublishes(), source);
  await vi.waitFor(() => expect(readers.finalized).toBeGreaterThanOrEqual(2), { timeout: 5_000 });
  expect(shipper.status().lastError).toMatch(/publish timed out/);
  await shipper.close();
  expect(readers.finalized).toBe(readers.opened);
});
