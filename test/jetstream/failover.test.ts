import { expect, it } from 'vitest';
import { WalError } from '../../src/errors.js';
import {
  describeStream,
  ensureStream,
  lastMessageOnSubject,
  publishMessage,
  readStream,
  type PublishAck,
  type StreamReport,
} from '../../src/jetstream/index.js';
import { texts } from '../helpers/bytes.js';
import { streamSpec, useConnection } from '../helpers/jetstream.js';
import { pollUntil, useCluster } from '../helpers/nats-cluster.js';

/*
 * Servers die under a publisher and a reader (SIGKILL). Measured here with
 * 2.9.10: when the stream leader dies, publishes fail for 5-8 s (an ack
 * timeout, then "no responders" while the two other replicas elect a
 * leader), then go on at the next sequence.
 *
 * Each killed node comes back without its stream and consumer replicas, as
 * an operator would bring it back: 2.9.10 can leave a node restarted on its
 * old store after a kill -9 behind the others while it reports itself
 * current (nats-server issues 4174 and 8319), so its replicas are not
 * trusted. The streams copy themselves to it again. It keeps its meta log
 * (the helper's dropReplicas says why).
 */

const cluster = useCluster({ nodes: 3 });
  // A short ack timeout: an attempt sent to a dead leader fails in 2 s rather than 5.
const connection = useConnection(cluster, { timeoutMs: 2_000 });

const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
/** Bounds each wait on the cluster in this file; a cluster that needs longer is a failure. */
const DEADLINE_MS = 30_000;
const MAX_BYTES_IN_FLIGHT = 64 * 1024;

async function logStream(name: string): Promise<StreamReport> {
  return ensureStream(connection(), streamSpec(name, { duplicateWindowMs: 120_000 }));
}

/**
 * Publishes message `i` of `stream`, resending it with the same msgID after
 * each WAL_REPLICATION failure, as a shipper does while a stream elects a
 * leader: an attempt whose ack was lost may have been stored, and then its
 * resend is acked as a duplicate at the sequence it got. Any other error,
 * or a cluster that takes longer than DEADLINE_MS, fails the test.
 */
async function publishUntilAcked(stream: string, i: number, failures: WalError[]): Promise<PublishAck> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    try {
      return await publishMessage(connection(), `${stream}.log`, Buffer.from(`m${i}`), { msgID: `m${i}`, headers: { 'Segwal-N': `${i}` } });
    } catch (error) {
      if (!(error instanceof WalError) || error.code !== 'WAL_REPLICATION' || Date.now() > deadline) throw error;
      failures.push(error);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/**
 * Reads `stream` from sequence 1 as a follower does: after a WAL_REPLICATION
 * failure it reads again from the sequence after the last one it got, so it
 * sees each message once. Stops on `stop()`.
 */
function follow(stream: string): { seqs: number[]; failures: WalError[]; stop: () => Promise<void> } {
  const controller = new AbortController();
  const seqs: number[] = [];
  const failures: WalError[] = [];
  const done = (async () => {
    while (!controller.signal.aborted) {
      const fromSeq = (seqs.at(-1) ?? 0) + 1;
      try {
        for await (const message of readStream(connection(), { stream, fromSeq, maxBytesInFlight: MAX_BYTES_IN_FLIGHT, signal: controller.signal })) {
          seqs.push(message.seq);
        }
      } catch (error) {
        if (!(error instanceof WalError) || error.code !== 'WAL_REPLICATION' || failures.length > 20) throw error;
        failures.push(error);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  })();
  return {
    seqs,
    failures,
    stop: async () => {
      controller.abort();
      await done;
    },
  };
}

async function restartWithoutReplicas(index: number, stream: string, messages: number): Promise<void> {
  await cluster().start(index, { dropReplicas: true });
  await cluster().waitForReplicas(stream);
  expect(await cluster().storedOn(index, stream)).toMatchObject({ messages, last_seq: messages });
  const report = await describeStream(connection(), stream);
  expect(report.state).toMatchObject({ messages, last_seq: messages });
  expect(report.cluster?.replicas?.every((replica) => replica.current)).toBe(true);
}

it('killing the stream leader loses nothing acknowledged: a new leader takes over and every message reads back once, in order', async () => {
  const stream = await logStream('failover');
  const failures: WalError[] = [];
  const acks: PublishAck[] = [];
  for (let i = 1; i <= 20; i++) acks.push(await publishUntilAcked('failover', i, failures));
  expect(failures).toEqual([]);
  expect((await lastMessageOnSubject(connection(), stream.config, 'failover.log'))?.seq).toBe(20);
  const follower = follow('failover');
  await pollUntil(() => follower.seqs.length === 20, 'the follower to reach sequence 20', { timeoutMs: DEADLINE_MS });

  const leader = await cluster().leaderOf('failover');
  expect(leader).toBeDefined();
  await cluster().stop(leader as number, 'SIGKILL');
  for (let i = 21; i <= 40; i++) acks.push(await publishUntilAcked('failover', i, failures));

  // The election took seconds; the publishes in between failed as WAL_REPLICATION, never as a conflict.
  expect(failures.length).toBeGreaterThan(0);
  expect(failures.every((failure) => failure.code === 'WAL_REPLICATION')).toBe(true);
  const newLeader = await cluster().leaderOf('failover');
  expect(newLeader).toBeDefined();
  expect(newLeader).not.toBe(leader);
  // One sequence per message, in publish order: a resent message that had been stored came back as a duplicate of itself.
  expect(acks.map((ack) => ack.seq)).toEqual(upTo(40));
  const last = await lastMessageOnSubject(connection(), stream.config, 'failover.log');
  expect(last).toMatchObject({ seq: 40, headers: { 'Nats-Msg-Id': 'm40', 'Segwal-N': '40' } });
  expect(texts([last?.data ?? new Uint8Array()])).toEqual(['m40']);

  await pollUntil(() => follower.seqs.length >= 40, 'the follower to reach sequence 40', { timeoutMs: DEADLINE_MS });
  await follower.stop();
  expect(follower.seqs).toEqual(upTo(40));

  await restartWithoutReplicas(leader as number, 'failover', 40);
});

it('a reader whose consumer\'s server is killed fails with a stall naming the next sequence, and reading on from there loses nothing', async () => {
  // The ordered consumer is an R1 consumer on one server. When that server dies, the 3.4 client
  // waits for the consumer's info forever instead of recreating it; readStream fails after its
  // stall timeout instead, and the follower reads on from the next sequence.
  await logStream('stall');
  const failures: WalError[] = [];
  for (let i = 1; i <= 10; i++) await publishUntilAcked('stall', i, failures);
  const follower = follow('stall');
  await pollUntil(() => follower.seqs.length === 10, 'the follower to reach sequence 10', { timeoutMs: DEADLINE_MS });

  const [consumer] = await connection().jsm.consumers.list('stall').next();
  const holder = cluster().servers.findIndex((_, index) => consumer?.cluster?.leader === `n${index + 1}`);
  expect(holder).toBeGreaterThanOrEqual(0);
  await cluster().stop(holder, 'SIGKILL');
  for (let i = 11; i <= 20; i++) await publishUntilAcked('stall', i, failures);

  await pollUntil(() => follower.seqs.length >= 20, 'the follower to reach sequence 20', { timeoutMs: DEADLINE_MS });
  await follower.stop();
  expect(follower.seqs).toEqual(upTo(20));
  expect(follower.failures[0]?.message).toBe(
    'read stream stall stalled after sequence 10: no message or heartbeat for 10000 ms ' +
      '(the server holding its consumer may be gone); read again from sequence 11',
  );
  expect(follower.failures.every((failure) => failure.code === 'WAL_REPLICATION')).toBe(true);

  await restartWithoutReplicas(holder, 'stall', 20);
});
