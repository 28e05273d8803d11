import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Wal } from 'segwal';
import { connectJetStream, ensureStream, followStream, publishMessage, ship } from 'segwal/jetstream';
import { findNatsServer, startLocalCluster } from '../examples/local-nats-cluster.mjs';
import { allThreadsIdle, startCpuMeter } from './cpu-time.mjs';
import { Latencies } from './measure.mjs';

/*
 * The shipping workloads (issue 14), each on a three-node cluster of its own
 * on this machine (R3 file streams, as ship() creates them):
 *   S1  shipping throughput against a bare publisher that sends the same
 *       bytes in the same batches with the same window;
 *   S2  what shipping costs the writer: W3 with and without a shipper;
 *   S3  commit → acknowledged by the stream, and commit → applied by a
 *       follower, at a steady 5,000 commits/s.
 */

const STREAM = 'bench';
/** The installed package's CLI, as `npx segwal` runs it. */
const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
/** Writes S1's log in a process of its own. */
const WRITE_LOG = fileURLToPath(new URL('./write-log.mjs', import.meta.url));
/** ship()'s defaults, which the bare publisher copies. */
const WINDOW = 32;
const HEADER_ALLOWANCE_BYTES = 1024;
/** A transaction's encoding on the wire: begin, commit, count, then per event its length (docs/REPLICATION.md). */
const TX_OVERHEAD_BYTES = 8 + 8 + 4 + 4;

/** Runs `body(cluster)` with a fresh three-node cluster under `dir`, stopped afterwards. */
export async function withCluster(dir, body) {
  const binary = findNatsServer();
  if (binary === null) throw new Error('nats-server not found on PATH or in /usr/sbin: apt-get install -y nats-server');
  const natsDir = path.join(dir, 'nats');
  fs.mkdirSync(natsDir, { recursive: true });
  const cluster = await startLocalCluster(binary, natsDir);
  try {
    return await body(cluster);
  } finally {
    await cluster.stop();
  }
}

/**
 * Creates the stream before the clock starts, as ship() would (R3, a 2-minute
 * duplicate window, messages up to max_payload): creating an R3 stream takes
 * the cluster about half a second, which is not shipping. On a busy machine,
 * a cluster that has just started can take longer than the default 5 s request
 * timeout to answer: a full run was lost that way, so it gets 30 s here.
 */
async function createStream(cluster, subject) {
  const connection = await connectJetStream({ servers: cluster.servers, name: 'bench stream setup', timeoutMs: 30_000 });
  try {
    await ensureStream(connection, { name: STREAM, subjects: [subject], duplicateWindowMs: 120_000, maxMsgSize: connection.maxPayload });
  } finally {
    await connection.close();
  }
}

/** When S1's or S2's clock starts: the wall clock, and the CPU time of this process and of the cluster's servers so far. */
function startClock(cluster) {
  return { at: performance.now(), cpu: process.cpuUsage(), servers: startCpuMeter(cluster.pids) };
}

/**
 * S1's rate: `count` transactions of `eventBytes` each since `started`, the
 * CPU time this process spent per transaction (all its threads), and the
 * three servers': on 2 cores, what the sender spends, the servers lack, and
 * what the servers spend per transaction bounds what the cores can ship.
 */
function rate(started, count, eventBytes) {
  const seconds = (performance.now() - started.at) / 1000;
  const cpu = process.cpuUsage(started.cpu);
  return {
    ops: count,
    opsPerSec: count / seconds,
    mbPerSec: (count * eventBytes) / seconds / 1e6,
    cpuUsPerOp: (cpu.user + cpu.system) / count,
    serversCpuUsPerOp: started.servers.stop() / count,
  };
}

/**
 * S1, driver `ship`: a log of one-event transactions written beforehand by a
 * process of its own (bench/write-log.mjs), opened and shipped by ship(wal)
 * until the stream acknowledged the last. The clock starts once ship() has
 * connected and found the stream, as the bare publisher's starts once it has
 * connected and made its stream.
 */
export function shipThroughput(dir, { eventBytes, totalBytes }) {
  return withCluster(dir, async (cluster) => {
    const logDir = path.join(dir, 'log');
    const count = Math.floor(totalBytes / eventBytes);
    const lastCommitLsn = Number(execFileSync(process.execPath, [WRITE_LOG, logDir, String(count), String(eventBytes)]).toString().trim());
    const { wal } = await Wal.open({ dir: logDir, sync: 'none' });
    if (wal.durableLsn !== lastCommitLsn) throw new Error(`the log written for S1 ends at LSN ${wal.durableLsn}, its writer said ${lastCommitLsn}`);
    await createStream(cluster, `segwal.${wal.logId}`);
    const shipper = await ship(wal, { servers: cluster.servers, stream: STREAM, window: WINDOW });
    const started = startClock(cluster);
    await shipper.acknowledged(lastCommitLsn);
    const measured = rate(started, count, eventBytes);
    await shipper.close();
    await wal.close();
    return measured;
  });
}

/**
 * S1, driver `bare-publisher`: the same transactions' bytes, packed as the
 * shipper packs them (as many whole transactions as fit in max_payload less
 * the header allowance), published with the same window, without segwal's
 * headers, ids or chain check.
 */
export function barePublisherThroughput(dir, { eventBytes, totalBytes }) {
  return withCluster(dir, async (cluster) => {
    const connection = await connectJetStream({ servers: cluster.servers, name: 'bench bare publisher' });
    try {
      await createStream(cluster, `${STREAM}.bare`);
      const count = Math.floor(totalBytes / eventBytes);
      const txBytes = TX_OVERHEAD_BYTES + eventBytes;
      const perMessage = Math.max(1, Math.floor((connection.maxPayload - HEADER_ALLOWANCE_BYTES) / txBytes));
      const started = startClock(cluster);
      const window = [];
      for (let sent = 0; sent < count; sent += perMessage) {
        const body = Buffer.alloc(Math.min(perMessage, count - sent) * txBytes, 0x5a);
        if (window.length >= WINDOW) await window.shift();
        window.push(publishMessage(connection, `${STREAM}.bare`, body));
      }
      await Promise.all(window);
      return rate(started, count, eventBytes);
    } finally {
      await connection.close();
    }
  });
}

/**
 * S2: the W3 load (`run`, 64 writers, group mode) on a Wal with a cluster
 * running beside it in every driver; `shipping` says who ships: nobody,
 * ship(wal) in the writer's process ('in-process'), `segwal ship` in a
 * process of its own ('separate-process', stopped with SIGTERM afterwards),
 * or that process with the three servers in Linux's idle scheduling class
 * ('separate-process-idle'): they run only on CPU the writer leaves, as a
 * user keeps a shipper from competing with the service it ships.
 * The difference to nobody is what shipping costs the writer. Beside the
 * rate, where the 2 cores went during it, per commit (this process, the
 * servers, the ship process; `coresBusy` all of them per second), and the
 * share of the commits the stream had acknowledged when the writers stopped
 * (the ship process's from its last status line, up to 100 ms old), and
 * whether every thread of the servers and the ship process was at idle
 * priority when the writers stopped.
 */
export function writerUnderShipping(dir, { shipping, run }) {
  return withCluster(dir, async (cluster) => {
    const logDir = path.join(dir, 'log');
    const { wal } = await Wal.open({ dir: logDir, sync: 'group' });
    const shipper = shipping === 'in-process' ? await ship(wal, { servers: cluster.servers, stream: STREAM }) : null;
    const shipProcess = shipping?.startsWith('separate-process') ? await startShipProcess(logDir, cluster.servers) : null;
    const shippingPids = shipProcess === null ? cluster.pids : [...cluster.pids, shipProcess.pid];
    if (shipping === 'separate-process-idle') for (const pid of shippingPids) runWhenIdle(pid);
    try {
      const shipProcessCpu = shipProcess === null ? null : startCpuMeter([shipProcess.pid]);
      const started = startClock(cluster);
      const result = await run({ append: (event) => wal.commit([event]) });
      const elapsedUs = (performance.now() - started.at) * 1000;
      const own = process.cpuUsage(started.cpu);
      const ownUs = own.user + own.system;
      const serversUs = started.servers.stop();
      const shipProcessUs = shipProcessCpu?.stop() ?? 0;
      const acknowledged = shipper?.status().acknowledgedCommitLsn ?? shipProcess?.acknowledgedCommitLsn() ?? null;
      return {
        ...result,
        cpuUsPerOp: ownUs / result.ops,
        serversCpuUsPerOp: serversUs / result.ops,
        shipProcessCpuUsPerOp: shipProcessCpu === null ? null : shipProcessUs / result.ops,
        coresBusy: (ownUs + serversUs + shipProcessUs) / elapsedUs,
        acknowledgedShare: acknowledged === null ? null : acknowledged / (wal.status().nextLsn - 1),
        shippingAtIdlePriority: allThreadsIdle(shippingPids),
      };
    } finally {
      await shipper?.close();
      await shipProcess?.stop();
      await wal.close();
    }
  });
}

/**
 * Puts every thread of process `pid` in SCHED_IDLE (`chrt -a -i -p 0`, from
 * util-linux; no privilege needed for one's own processes): it then runs
 * only when no other thread wants the CPU. Threads it starts later inherit it.
 */
function runWhenIdle(pid) {
  try {
    execFileSync('chrt', ['-a', '-i', '-p', '0', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    throw new Error(`chrt could not put process ${pid} in the idle scheduling class (chrt is in Debian's util-linux): ${error.message}`);
  }
}

/**
 * `segwal ship <dir>` as a user runs it beside a writer; resolves at its
 * first status line (JSON, every 100 ms), once it has connected and found the
 * stream. The lines say what the stream has acknowledged.
 */
async function startShipProcess(dir, servers) {
  const child = spawn(process.execPath, [CLI, 'ship', dir, '--servers', servers.join(','), '--stream', STREAM, '--status-ms', '100', '--json'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let stderr = '';
  let acknowledgedCommitLsn = 0;
  await new Promise((resolve, reject) => {
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      const lines = stderr.split('\n');
      for (const line of lines.slice(0, -1).reverse()) {
        const status = line.startsWith('{') ? JSON.parse(line) : null;
        if (status === null) continue;
        acknowledgedCommitLsn = status.acknowledgedCommitLsn;
        resolve();
        break;
      }
    });
    exited.then(({ code }) => reject(new Error(`segwal ship exited (${code}) before shipping:\n${stderr}`)));
  });
  return {
    pid: child.pid,
    acknowledgedCommitLsn: () => acknowledgedCommitLsn,
    async stop() {
      child.kill('SIGTERM');
      const { code, signal } = await exited;
      if (code !== 0) throw new Error(`segwal ship ended with ${code ?? signal}:\n${stderr}`);
    },
  };
}

/**
 * S3: a steady 5,000 commits/s (5 every millisecond, per-commit mode) for
 * `durationMs`, shipped by ship(wal) and followed by followStream into a
 * replica in this process. `measure` picks the row: `acknowledged` (from the
 * commit call to the stream holding it) or `applied` (to the replica having
 * applied it, seen by polling its status every millisecond).
 */
export function steadyLatency(dir, { durationMs, perSecond, measure }) {
  return withCluster(dir, async (cluster) => {
    const { wal } = await Wal.open({ dir: path.join(dir, 'log'), sync: 'per-commit' });
    const shipper = await ship(wal, { servers: cluster.servers, stream: STREAM });
    const event = Buffer.alloc(128, 0x5a);
    // The follower needs the stream's first message to know the log.
    const first = await wal.commit([event]);
    await shipper.acknowledged(first.commitLsn);
    const follower = await followStream({ servers: cluster.servers, stream: STREAM, dir: path.join(dir, 'replica') });

    const acknowledged = new Latencies();
    const applied = new Latencies();
    const waitingToApply = [];
    const watch = setInterval(() => {
      const { appliedCommitLsn } = follower.status();
      const now = performance.now();
      while (waitingToApply.length > 0 && waitingToApply[0].commitLsn <= appliedCommitLsn) applied.add(now - waitingToApply.shift().at);
    }, 1);
    const perTick = Math.max(1, Math.round(perSecond / 1000));
    const pending = [];
    const started = performance.now();
    let commits = 0;
    await new Promise((resolve) => {
      const tick = setInterval(() => {
        if (performance.now() - started >= durationMs) {
          clearInterval(tick);
          resolve();
          return;
        }
        for (let i = 0; i < perTick; i++) {
          const at = performance.now();
          commits++;
          pending.push(
            wal.commit([event]).then(async ({ commitLsn }) => {
              waitingToApply.push({ commitLsn, at });
              waitingToApply.sort((a, b) => a.commitLsn - b.commitLsn);
              await shipper.acknowledged(commitLsn);
              acknowledged.add(performance.now() - at);
            }),
          );
        }
      }, 1);
    });
    await Promise.all(pending);
    const seconds = (performance.now() - started) / 1000;
    while (waitingToApply.length > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    clearInterval(watch);
    await follower.close();
    await shipper.close();
    await wal.close();
    return { ops: commits, opsPerSec: commits / seconds, ...(measure === 'applied' ? applied : acknowledged).summary() };
  });
}
