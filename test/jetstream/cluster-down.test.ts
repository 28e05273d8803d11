import { describe, expect, it } from 'vitest';
import { Wal, WalError } from '../../src/index.js';
import { ship, type ShipOptions } from '../../src/jetstream/index.js';
import { committed, expectSameTransactions } from '../helpers/copies.js';
import { useConnection } from '../helpers/jetstream.js';
import { useCluster, type NatsCluster } from '../helpers/nats-cluster.js';
import type { ShippedTx } from '../helpers/shipped.js';
import { readShipped } from '../helpers/shipped.js';
import { segmentNames, tempDir } from '../helpers/temp-dir.js';

/*
 * The whole cluster stopped for longer than the shipper's retry budget
 * (issue 14): the shipper says it is stalled and goes on retrying; local
 * retention keeps every segment holding a transaction the stream has not
 * acknowledged; at `maxUnshippedBytes`, `onLimit` decides: 'hold' holds new
 * commits (WAL_BACKPRESSURE), 'detach' stops the shipper and lets the log go
 * on. When the cluster is back, shipping goes on and the stream equals the log.
 *
 * The nodes are stopped with SIGTERM and started again on their own stores:
 * a clean shutdown flushes each store, and nothing is published while the
 * cluster is down, so no node is behind another when they come back. The
 * 2.9.10 catch-up bug (nats-server issues 4174 and 8319) needs a kill -9 and a
 * node that missed writes the others took; the failover tests bring such a
 * node back without its replicas, and the leader-kill test keeps it down.
 */

const cluster = useCluster({ nodes: 3 });
const connection = useConnection(cluster);

const SEGMENT_BYTES = 32 * 1024;
const EVENT_BYTES = 4 * 1024;
const LIMIT_BYTES = 256 * 1024;
const RETRY_BUDGET_MS = 1_000;
/** Waits on the shipper and the cluster: the retry backoff reaches 2 s. */
const POLL = { timeout: 30_000, interval: 20 };
/** Room for a slow meta election after a whole-cluster start (startAll) on top of the test's own waits. */
const TIMEOUT = 120_000;

function shipOptions(stream: string, more: Partial<ShipOptions>): ShipOptions {
  return {
    servers: cluster().servers,
    stream,
    retryBudgetMs: RETRY_BUDGET_MS,
    publishTimeoutMs: 2_000,
    maxUnshippedBytes: LIMIT_BYTES,
    ...more,
  };
}

async function stopAll(nodes: NatsCluster): Promise<void> {
  await Promise.all(nodes.servers.map((_, index) => nodes.stop(index, 'SIGTERM')));
}

/**
 * Starts every node together: one alone cannot elect a meta leader, and each start waits for a whole
 * cluster. A whole cluster back on its stores once took longer than 20 s to elect its meta leader, on
 * 2 cores busy with other clusters: it gets a minute.
 */
async function startAll(nodes: NatsCluster): Promise<void> {
  await Promise.all(nodes.servers.map((_, index) => nodes.start(index, { formTimeoutMs: 60_000 })));
}

/**
 * The committed transactions of a log that truncation shortens as the test
 * goes: read before each truncation, and at the end, so the stream can be
 * compared with all the log ever held.
 */
function logRecord(dir: string): { readNew(): Promise<void>; readonly transactions: ShippedTx[] } {
  const transactions: ShippedTx[] = [];
  return {
    transactions,
    async readNew() {
      const last = transactions.at(-1);
      transactions.push(...(await committed(dir, last === undefined ? { fromLsn: 1 } : { fromLsn: last.commitLsn + 1 })));
    },
  };
}

async function commitEvents(wal: Wal, count: number, label: string): Promise<number> {
  let last = 0;
  for (let i = 0; i < count; i++) last = (await wal.commit([Buffer.alloc(EVENT_BYTES, `${label} ${i} `)]))!.commitLsn;
  return last;
}

describe('the whole cluster down for longer than the retry budget', () => {
  it("onLimit 'hold': stalled, retention keeps what the stream lacks, commits are held at the limit and go on when the cluster is back", async () => {
    const stream = 'down-hold';
    const dir = tempDir();
    const log = logRecord(dir);
    const { wal } = await Wal.open({ dir, sync: 'per-commit', segmentBytes: SEGMENT_BYTES });
    const shipper = await ship(wal, shipOptions(stream, { onLimit: 'hold', holdTimeoutMs: 1_500 }));
    const shippedUpTo = await commitEvents(wal, 40, 'shipped');
    await shipper.acknowledged(shippedUpTo);
    // Acknowledged segments are the checkpoint's to delete.
    await log.readNew();
    const segmentsBefore = segmentNames(dir).length;
    await wal.checkpoint(() => undefined);
    expect(segmentNames(dir).length).toBeLessThan(segmentsBefore);

    await stopAll(cluster());
    const unshipped = await commitEvents(wal, 20, 'while down');
    await expect.poll(() => shipper.status().state, POLL).toBe('stalled');
    expect(shipper.status()).toMatchObject({ acknowledgedCommitLsn: shippedUpTo, lastError: expect.any(String), holdingCommits: false });

    // Retention: neither a checkpoint nor a truncation deletes what the stream has not acknowledged.
    await log.readNew();
    const firstUnacknowledged = log.transactions.find((tx) => tx.commitLsn > shippedUpTo)!;
    await wal.checkpoint(() => undefined);
    await wal.truncateUpTo(wal.durableLsn);
    expect(wal.status().oldestLsn).toBeLessThanOrEqual(firstUnacknowledged.beginLsn);
    expect(await committed(dir, { fromLsn: firstUnacknowledged.commitLsn })).toEqual(log.transactions.filter((tx) => tx.commitLsn > shippedUpTo));
    expect(unshipped).toBe(log.transactions.at(-1)!.commitLsn);

    // Up to the limit, then commits are held: the limit is checked before each new transaction, so
    // the commit that would go past it is the one held (it waits, and is refused like any held commit).
    for (let n = 0; !shipper.status().holdingCommits; n++) {
      expect(shipper.status().bytesBehind, 'the bytes behind grow until the limit holds commits').toBeLessThanOrEqual(LIMIT_BYTES + EVENT_BYTES + 1024);
      await wal.commit([Buffer.alloc(EVENT_BYTES, `to the limit ${n} `)]).catch((error: unknown) => {
        if (!(error instanceof WalError && error.code === 'WAL_BACKPRESSURE')) throw error;
      });
    }
    expect(shipper.status().bytesBehind).toBeGreaterThan(LIMIT_BYTES);
    expect(wal.status().commitHolds).toEqual([expect.stringMatching(new RegExp(`stream ${stream} is \\d+ bytes behind`))]);
    expect(() => wal.commitSync([Buffer.from('blocking')])).toThrow(expect.objectContaining({ code: 'WAL_BACKPRESSURE' }));
    expect(() => wal.begin()).toThrow(expect.objectContaining({ code: 'WAL_BACKPRESSURE' }));
    const nextLsn = wal.nextLsn;
    const held = wal.commit([Buffer.from('held past the timeout')]).catch((error: unknown) => error);
    expect(wal.status().waitingCommits).toBe(1);
    expect(await held).toMatchObject({ code: 'WAL_BACKPRESSURE', message: expect.stringMatching(/waited 1500 ms.*Nothing was written/) });
    expect(wal.nextLsn).toBe(nextLsn);

    await startAll(cluster());
    await expect.poll(() => shipper.status().holdingCommits, POLL).toBe(false);
    expect(shipper.status().state).toBe('shipping');
    expect(wal.status()).toMatchObject({ commitHolds: [], waitingCommits: 0 });
    const last = await commitEvents(wal, 5, 'after');
    await shipper.acknowledged(last);
    expect(shipper.status()).toMatchObject({ state: 'shipping', divergences: 0, transactionsBehind: 0 });

    await log.readNew();
    const shipped = await readShipped(connection(), stream);
    expectSameTransactions(shipped.transactions, log.transactions, 'the stream after the cluster came back');
    await shipper.close();
    await wal.close();
  }, TIMEOUT);

  it("onLimit 'detach': the shipper detaches with a warning, the log goes on and may truncate; a later shipper refuses the hole with WAL_REPLICATION_DIVERGED", async () => {
    const stream = 'down-detach';
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, sync: 'per-commit', segmentBytes: SEGMENT_BYTES });
    const shipper = await ship(wal, shipOptions(stream, { onLimit: 'detach' }));
    const warnings: Array<Error & { code?: string }> = [];
    const onWarning = (warning: Error) => void warnings.push(warning);
    process.on('warning', onWarning);
    const shippedUpTo = await commitEvents(wal, 10, 'shipped');
    await shipper.acknowledged(shippedUpTo);
    try {
      await stopAll(cluster());
      // An idle shipper has nothing to fail on: a commit makes it try.
      await commitEvents(wal, 5, 'while down');
      await expect.poll(() => shipper.status().state, POLL).toBe('stalled');
      // Past the limit: detached, and no commit is held on the way.
      for (let round = 0; shipper.status().state !== 'detached'; round++) {
        expect(round, 'rounds of commits before the shipper detaches').toBeLessThan(100);
        await commitEvents(wal, 8, 'past the limit');
        await new Promise((resolve) => setTimeout(resolve, 20));
        expect(wal.status().commitHolds).toEqual([]);
      }
      expect(shipper.status()).toMatchObject({
        acknowledgedCommitLsn: shippedUpTo,
        holdingCommits: false,
        lastError: expect.stringMatching(new RegExp(`over the limit of ${LIMIT_BYTES}: detached`)),
      });
      await expect.poll(() => warnings.filter((warning) => warning.code === 'SEGWAL_SHIPPER_DETACHED').length, POLL).toBe(1);

      // Writing goes on, and truncation is no longer held: it deletes segments the stream lacks.
      await commitEvents(wal, 10, 'detached');
      expect(wal.status().oldestLsn).toBeLessThanOrEqual(shippedUpTo);
      const segments = segmentNames(dir).length;
      expect(await wal.truncateUpTo(wal.durableLsn)).toBeGreaterThan(0);
      expect(segmentNames(dir).length).toBeLessThan(segments);
      expect(wal.status().oldestLsn).toBeGreaterThan(shippedUpTo + 1);
      await shipper.close();
    } finally {
      process.off('warning', onWarning);
    }

    await startAll(cluster());
    // ship() asks for the stream once, at its start, and fails when no one answers: a cluster just
    // formed again still elects the stream's own leader (seconds on 2.9.10), so wait for it as an operator would.
    await cluster().waitForReplicas(stream);
    const later = await ship(wal, shipOptions(stream, { onLimit: 'detach' }));
    const failure = await new Promise<Error>((resolve) => later.on('failure', resolve));
    expect(failure).toMatchObject({ code: 'WAL_REPLICATION_DIVERGED', message: expect.stringMatching(/no longer holds/) });
    expect(later.status().state).toBe('failed');
    // The stream kept what it had, and nothing after a hole.
    expect((await readShipped(connection(), stream)).transactions.at(-1)?.commitLsn).toBe(shippedUpTo);
    expect(await wal.commit([Buffer.from('the log goes on')])).not.toBeNull();
    await later.close();
    await wal.close();
  }, TIMEOUT);
});
