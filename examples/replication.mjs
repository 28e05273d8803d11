// Replicating a segwal log to NATS JetStream, all on this machine: a local
// three-node cluster, a primary log shipped to a stream with ship(), and a
// replica in another directory following that stream with followStream().
// It writes a few thousand transactions at a steady pace, prints how far
// behind the replica is as it goes, waits until the replica has everything,
// checks that it reads exactly as the primary does, and stops everything it
// started (the servers by pid, the temp directory), even on an error or
// Ctrl-C. docs/REPLICATION.md says how shipping and following work.
//
// Run with `npm run example:replication`. Needs nats-server (Debian, Ubuntu:
// apt-get install -y nats-server) and the NATS clients next to segwal
// (npm install @nats-io/transport-node @nats-io/jetstream).
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Wal, readTransactions } from 'segwal';
import { followStream, ship } from 'segwal/jetstream';
import { findNatsServer, startLocalCluster } from './local-nats-cluster.mjs';

const TRANSACTIONS = 3000;
const PER_SECOND = 1000;
const REPORT_EVERY_MS = 250;
const STREAM = 'example-wal';
/** How long the replica may take to catch up after the last write before the run gives up. */
const CATCH_UP_TIMEOUT_MS = 30_000;

const binary = findNatsServer();
if (binary === null) {
  console.error('nats-server not found on PATH or in /usr/sbin: install it (Debian, Ubuntu: sudo apt-get install -y nats-server)');
  process.exit(1);
}

// Ctrl-C (or a SIGTERM) ends the run through the same cleanup as an error.
const interrupted = new AbortController();
process.once('SIGINT', () => interrupted.abort(new Error('interrupted')));
process.once('SIGTERM', () => interrupted.abort(new Error('interrupted')));

const temp = mkdtempSync(path.join(tmpdir(), 'segwal-replication-'));
const primaryDir = path.join(temp, 'primary');
const replicaDir = path.join(temp, 'replica');
const natsDir = path.join(temp, 'nats');
mkdirSync(natsDir);
let cluster;
let wal;
let shipper;
let follower;
try {
  cluster = await startLocalCluster(binary, natsDir);
  console.log(`started ${cluster.pids.length} nats-server processes (pids ${cluster.pids.join(', ')}) on ${cluster.servers.join(', ')}, in ${temp}`);

  ({ wal } = await Wal.open({ dir: primaryDir, codec: 'json' }));
  shipper = await ship(wal, { servers: cluster.servers, stream: STREAM });
  // A follower learns which log a stream carries from its first message: ship one before following.
  const written = [{ ...(await wal.commit([{ op: 'put', key: 'user:0', value: 0 }])), at: Date.now() }];
  await shipper.acknowledged(written[0].commitLsn);
  follower = await followStream({ servers: cluster.servers, stream: STREAM, dir: replicaDir });
  console.log(`shipping ${primaryDir} to stream ${STREAM}; following it into ${replicaDir}`);

  const report = setInterval(() => console.log(progressLine(written)), REPORT_EVERY_MS);
  try {
    const start = Date.now();
    for (let i = 1; i < TRANSACTIONS; i++) {
      interrupted.signal.throwIfAborted();
      // A steady pace: transaction i is due i / PER_SECOND seconds after the start.
      const due = start + (i * 1000) / PER_SECOND;
      if (due > Date.now()) await sleep(due - Date.now(), undefined, { signal: interrupted.signal });
      const lsns = await wal.commit([{ op: 'put', key: `user:${i % 100}`, value: i }]);
      written.push({ ...lsns, at: Date.now() });
    }
    const last = written.at(-1).commitLsn;
    // Group mode makes the last commits durable within 50 ms; only then are they shipped.
    await shipper.acknowledged(last);
    await replicaReaches(last);
    console.log(progressLine(written));
  } finally {
    clearInterval(report);
  }

  await closeAll();
  const primary = await transactions(primaryDir);
  const replica = await transactions(replicaDir);
  if (JSON.stringify(replica) !== JSON.stringify(primary)) {
    console.error(`replica != primary: the primary holds ${primary.length} transactions, the replica ${replica.length}`);
    process.exitCode = 1;
  } else {
    console.log(`replica == primary: ${primary.length} transactions, commit LSNs ${primary[0].commitLsn}..${primary.at(-1).commitLsn}, the same LSNs and events`);
  }
} catch (error) {
  if (!interrupted.signal.aborted) throw error; // shown by node, with its stack, once everything is stopped
  console.log('interrupted: stopping what was started');
  process.exitCode = 130;
} finally {
  await closeAll(); // a second close of each does nothing
  await cluster?.stop();
  rmSync(temp, { recursive: true, force: true });
  console.log(`stopped ${cluster?.pids.length ?? 0} nats-server processes${cluster === undefined ? '' : ` (pids ${cluster.pids.join(', ')})`}, removed ${temp}`);
}

/**
 * What was written, what the stream holds, and how far behind the replica is:
 * in transactions, and in time since the oldest transaction it lacks was
 * committed (the lag a reader of the replica sees).
 */
function progressLine(written) {
  const applied = follower.status().appliedCommitLsn;
  const missing = written.filter((tx) => tx.commitLsn > applied);
  const lagMs = missing.length === 0 ? 0 : Date.now() - missing[0].at;
  return (
    `wrote ${String(written.length).padStart(4)} transactions | stream acknowledged commit LSN ${shipper.status().acknowledgedCommitLsn} | ` +
    `replica applied commit LSN ${applied}: ${missing.length} behind, lag ${lagMs} ms`
  );
}

/** Polls the follower until it has applied `commitLsn`; fails if it stops or takes too long. */
async function replicaReaches(commitLsn) {
  const deadline = Date.now() + CATCH_UP_TIMEOUT_MS;
  for (let status = follower.status(); status.appliedCommitLsn < commitLsn; status = follower.status()) {
    if (status.state === 'failed') throw new Error(`the follower failed: ${status.lastError}`);
    if (Date.now() > deadline) throw new Error(`the replica did not reach commit LSN ${commitLsn} within ${CATCH_UP_TIMEOUT_MS} ms (it is at ${status.appliedCommitLsn})`);
    await sleep(10, undefined, { signal: interrupted.signal });
  }
}

/** Closes the follower, the shipper and the primary, in that order; a close that fails is reported, and the others still run. */
async function closeAll() {
  for (const [what, close] of [
    ['follower', () => follower?.close()],
    ['shipper', () => shipper?.close()],
    ['primary log', () => wal?.close()],
  ]) {
    await Promise.resolve()
      .then(close)
      .catch((error) => console.error(`closing the ${what}: ${error.message}`));
  }
}

/** A log's committed transactions as plain values, to compare. */
async function transactions(dir) {
  const all = [];
  for await (const tx of readTransactions(dir, { codec: 'json' })) all.push({ beginLsn: tx.beginLsn, commitLsn: tx.commitLsn, events: tx.events });
  return all;
}
