import { randomInt } from 'node:crypto';
import { afterAll, expect, it } from 'vitest';
import { Wal } from '../../src/index.js';
import { ship, type ShipperHandle } from '../../src/jetstream/index.js';
import { CommittedReader, expectPrefixOf, expectSameTransactions } from '../helpers/copies.js';
import { useConnection } from '../helpers/jetstream.js';
import { useCluster } from '../helpers/nats-cluster.js';
import { mulberry32, testSeed } from '../helpers/random.js';
import { ShippedReader } from '../helpers/shipped.js';
import { tempDir } from '../helpers/temp-dir.js';
import { eventsOf, keepCommitting } from '../helpers/writer.js';

/*
 * kill -9 of the stream leader while the shipper has a full window of
 * messages in flight (issue 14). The writer keeps committing through the
 * election; the shipper goes retrying (publishes time out, then nothing
 * answers until the two other replicas elect a leader, 5-8 s on 2.9.10), then
 * shipping again from the stream's last message. Nothing the stream
 * acknowledged may be lost: the stream never goes back (no divergence), and
 * after the kill it is the first transactions of the log, exactly; once the
 * log is shipped it equals the log.
 *
 * The killed node comes back WITH AN EMPTY STORE, as an operator would bring
 * it back: nats-server 2.9.10 can leave a node restarted on its old store
 * after a kill -9 behind the others while it reports itself current
 * (nats-server issues 4174 and 8319); here the new leader then held fewer
 * messages than its last sequence says, a hole the shipper rightly refuses
 * (WAL_REPLICATION_DIVERGED). That is the server's bug, not segwal's, so it is
 * kept out of the outcome: the stream copies itself to the new node, and
 * waitForReplicas checks the node's own store holds it all.
 *
 * Each round ships the log to a stream of its own, created on the three
 * nodes as they are: on 2.9.10 a stream whose replica was rebuilt that way
 * could not elect a leader when its leader was killed next (the two left
 * said "NO quorum" for the 30 s the test waited), so a second kill on the same stream tests the
 * server, not the shipper. A new shipper on the new stream ships the whole
 * log, the earlier rounds' transactions too, before and through the kill.
 */

const FULL = process.env.SEGWAL_RELIABILITY === 'full';
const KILLS = FULL ? 20 : 1;
const TIMEOUT = FULL ? 3_600_000 : 90_000;
const WINDOW = 8;
/** Commits of a burst: ~300 messages of 8 KiB, more than the stream takes while the test looks. */
const BURST = 600;
/** An election takes 5-8 s here; a shipper that is not back within this is a failure. */
const POLL = { timeout: 30_000, interval: 5 };

const cluster = useCluster({ nodes: 3 });
const connection = useConnection(cluster);

const totals = { kills: 0, transactionsChecked: 0, losses: 0 };
afterAll(() => {
  console.log(`leader kill summary: kills=${totals.kills} transactions checked=${totals.transactionsChecked} losses=${totals.losses}`);
});

/**
 * Fills the shipper's window: a burst of commits that become durable
 * together, more messages than the stream takes in the time it takes to
 * look; resolves once `WINDOW` messages are in flight. The burst goes on.
 */
async function fillWindow(wal: Wal, shipper: ShipperHandle, random: () => number): Promise<{ burst: Promise<unknown> }> {
  const burst = Promise.all(Array.from({ length: BURST }, (_, n) => wal.commit(eventsOf(n, random))));
  await expect.poll(() => shipper.status().inFlight, POLL).toBe(WINDOW);
  return { burst };
}

/** Samples the shipper's state every 2 ms: the states it went through since, for a failure to show. */
function watchStates(shipper: ShipperHandle): { seen: string[]; stop(): void } {
  const since = Date.now();
  const seen: string[] = [];
  let last = '';
  const sample = () => {
    const { state, acknowledgedCommitLsn, inFlight } = shipper.status();
    if (state !== last) seen.push(`${Date.now() - since} ms ${state} (acknowledged ${acknowledgedCommitLsn}, in flight ${inFlight})`);
    last = state;
  };
  sample();
  const timer = setInterval(sample, 2);
  return { seen, stop: () => clearInterval(timer) };
}

/** Runs `check`; when it fails, the failure says where the shipper, the log and the stream's leadership stood then. */
async function saying(
  wal: Wal,
  shipper: ShipperHandle,
  stream: string,
  states: string[],
  what: string,
  check: () => Promise<unknown>,
): Promise<void> {
  try {
    await check();
  } catch (error) {
    const { durableLsn, nextLsn, openTransactions, commitHolds, waitingCommits, bgFailure } = wal.status();
    const log = { durableLsn, nextLsn, openTransactions, commitHolds, waitingCommits, bgFailure, commits: wal.metrics().commits };
    const leader = await cluster().leaderOf(stream);
    throw new Error(
      `${what}: the shipper's status was ${JSON.stringify(shipper.status())}; the log's ${JSON.stringify(log)}; ` +
        `the stream's leader n${leader === undefined ? '?' : leader + 1}; since the kill's eve: ${states.join('; ')}`,
      { cause: error },
    );
  }
}

/** Ships the log to a new stream, kills its leader with a full window, brings the node back; the stream must equal the log. */
async function killRound(wal: Wal, log: CommittedReader, round: number, seed: number, random: () => number): Promise<{ messages: number }> {
  const context = `seed ${seed}, round ${round}`;
  const stream = `kill-leader-${round}`;
  // A short ack timeout: a publish sent to the dead leader fails in 1 s rather than 5. Each round's
  // new shipper starts the whole log behind, which passes the default limit of 256 MiB unshipped
  // around the 13th round: the commits of the burst were then held until the shipper caught up,
  // through the whole election, and the retrying in between went unseen. Holding is
  // cluster-down.test.ts's subject; here the limit is set above any log the 20 rounds write.
  const shipper = await ship(wal, {
    servers: cluster().servers,
    stream,
    window: WINDOW,
    maxMessageBytes: 8 * 1024,
    publishTimeoutMs: 1_000,
    maxUnshippedBytes: 4 * 1024 ** 3,
  });
  const reader = new ShippedReader(connection(), stream);
  /** Lets the shipper ship all the log holds now. */
  const shipAll = async () => {
    await log.catchUp();
    await shipper.acknowledged(log.transactions.at(-1)!.commitLsn);
  };
  const writer = keepCommitting(wal, random);
  try {
    const { burst } = await fillWindow(wal, shipper, random);
    // Asked with the window full, just before the kill: a new stream's leadership can still move
    // in its first moments, and killing a node that no longer leads tests nothing.
    await expect.poll(() => cluster().leaderOf(stream), POLL).toBeDefined();
    const leader = (await cluster().leaderOf(stream))!;
    const acknowledged = shipper.status().acknowledgedCommitLsn;
    const states = watchStates(shipper);
    try {
      await cluster().stop(leader, 'SIGKILL');
      states.seen.push(`n${leader + 1} killed`);
      await burst;
      states.seen.push('burst committed');
      await saying(wal, shipper, stream, states.seen, `${context}: retrying after the kill`, () =>
        expect.poll(() => shipper.status().state, POLL).toBe('retrying'),
      );
      await saying(wal, shipper, stream, states.seen, `${context}: shipping again past ${acknowledged}`, () =>
        expect.poll(() => shipper.status().state === 'shipping' && shipper.status().acknowledgedCommitLsn > acknowledged, POLL).toBe(true),
      );
    } finally {
      states.stop();
    }
    expect(shipper.status().divergences, `${context}: the stream went back`).toBe(0);
    expect(await cluster().leaderOf(stream), `${context}: the new leader`).not.toBe(leader);

    await reader.catchUp();
    await log.catchUp();
    expectPrefixOf(reader.transactions, log.transactions, `${context}: the stream after the election`);
    expect(reader.transactions.at(-1)!.commitLsn, `${context}: what was acknowledged before the kill`).toBeGreaterThanOrEqual(acknowledged);

    // Back with an empty store (2.9.10's catch-up bug, above). The writer rests meanwhile: the
    // stores are compared with the leader's, which must stand still for that.
    await writer.stop();
    await shipAll();
    await cluster().start(leader, { cleanStore: true });
    await cluster().waitForReplicas(stream);
  } finally {
    await writer.stop();
  }
  await shipAll();
  expect(shipper.status(), context).toMatchObject({ state: 'shipping', divergences: 0, transactionsBehind: 0 });
  await reader.catchUp();
  totals.transactionsChecked += log.transactions.length;
  totals.losses += Math.max(0, log.transactions.length - reader.transactions.length);
  expectSameTransactions(reader.transactions, log.transactions, `${context}: the stream after the leader kill`);
  await shipper.close();
  // The next round's new node copies every stream it holds a replica of: keep the cluster to one.
  await connection().jsm.streams.delete(stream);
  return { messages: reader.messages };
}

it(
  `killing the stream leader with a full window loses nothing acknowledged (${KILLS} round(s)): retrying, then shipping again, and the stream equals the log`,
  async () => {
    const seed = testSeed('leader kill', 'SEGWAL_LEADER_KILL_SEED', () => randomInt(2 ** 32));
    const random = mulberry32(seed);
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, sync: { mode: 'group', intervalMs: 5 } });
    const log = new CommittedReader(dir);
    let kills = 0;
    let messages = 0;
    for (let round = 1; round <= KILLS; round++) {
      messages += (await killRound(wal, log, round, seed, random)).messages;
      kills++;
      totals.kills++;
    }
    console.log(`leader kill: kills=${kills} transactions=${log.transactions.length} messages=${messages} seed=${seed}`);
    expect(kills).toBe(KILLS);
    await wal.close();
  },
  TIMEOUT,
);
