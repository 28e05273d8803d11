import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Wal, readTransactions, replayDir } from 'segwal';
import { Latencies } from './measure.mjs';

/*
 * The reader workloads (issue 13): how soon a consumer sees a durable
 * commit, in the writer's process and in another one, and what reading a log
 * of many small segments costs replayDir against Wal.open.
 */

const EVENT = Buffer.alloc(128, 0x5a);
const here = path.dirname(fileURLToPath(import.meta.url));

/** Wall-clock ms with sub-ms precision, comparable across processes on one machine. */
export const wallMs = () => performance.timeOrigin + performance.now();

/**
 * R1: one writer commits per-commit, one at a time; `wal.readTransactions()`
 * in the same process yields each transaction once it is durable. The
 * figure: from the commit's promise resolving (durable) to the consumer
 * holding the transaction; 0 when the consumer had it first (both wake on the
 * same fsync).
 */
export async function inProcessReader(dir, { commits }) {
  const { wal } = await Wal.open({ dir, sync: 'per-commit' });
  const durableAt = new Map();
  const receivedAt = new Map();
  const stop = new AbortController();
  const consumer = (async () => {
    for await (const tx of wal.readTransactions({ fromLsn: 1, signal: stop.signal })) {
      receivedAt.set(tx.commitLsn, performance.now());
      if (receivedAt.size === commits) return;
    }
  })();
  const started = performance.now();
  for (let i = 0; i < commits; i++) {
    const { commitLsn } = await wal.commit([EVENT]);
    durableAt.set(commitLsn, performance.now());
  }
  await consumer;
  const seconds = (performance.now() - started) / 1000;
  stop.abort();
  await wal.close();
  const latencies = new Latencies();
  for (const [lsn, at] of durableAt) latencies.add(Math.max(0, receivedAt.get(lsn) - at));
  return { ops: commits, opsPerSec: commits / seconds, ...latencies.summary() };
}

/**
 * R2: a writer process commits per-commit at a steady pace and reports when
 * each commit was acknowledged; this process follows the directory with
 * `readTransactions(dir, { follow: true })` at the default poll interval
 * (50 ms), optionally `durableOnly`. The figure: from acknowledgement to
 * the reader holding the transaction, across processes (wall clocks of one
 * machine).
 */
export async function outOfProcessReader(dir, { commits, durableOnly }) {
  const stop = new AbortController();
  const receivedAt = new Map();
  const reader = (async () => {
    for await (const tx of readTransactions(dir, { follow: true, signal: stop.signal, durableOnly })) {
      receivedAt.set(tx.commitLsn, wallMs());
      if (receivedAt.size === commits) return;
    }
  })();
  const acks = await runWriter(dir, commits);
  await reader;
  stop.abort();
  const latencies = new Latencies();
  for (const { lsn, at } of acks) latencies.add(Math.max(0, receivedAt.get(lsn) - at));
  const seconds = (acks.at(-1).at - acks[0].at) / 1000;
  return { ops: commits, opsPerSec: commits / seconds, ...latencies.summary() };
}

/** Runs bench/reader-writer.mjs; resolves to its acknowledgements, `{ lsn, at }` (wall ms). */
function runWriter(dir, commits) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, 'reader-writer.mjs'), dir, String(commits)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`reader-writer.mjs exited with ${code}`));
      resolve(
        out
          .trim()
          .split('\n')
          .map((line) => {
            const [lsn, at] = line.split(' ').map(Number);
            return { lsn, at };
          }),
      );
    });
  });
}

/**
 * R3: a log of many 1 KiB segments, built once per bench run under `root`
 * (untimed, shared by the rounds and both drivers); one driver times
 * `Wal.open` (recovery, then close), the other `replayDir`. The figure:
 * segments read per second.
 */
export async function manySegments(root, driverId, { segments }) {
  const dir = await manySegmentLog(root, segments);
  const started = performance.now();
  let events;
  if (driverId === 'wal-open') {
    const opened = await Wal.open({ dir, sync: 'none', segmentBytes: 1024, preallocate: false });
    events = opened.recovery.events;
    await opened.wal.close();
  } else {
    events = (await replayDir(dir)).events.length;
  }
  const seconds = (performance.now() - started) / 1000;
  return { ops: segments, opsPerSec: segments / seconds, events, elapsedMs: seconds * 1000 };
}

async function manySegmentLog(root, segments) {
  const dir = path.join(root, `R3-log-${segments}`);
  if (fs.existsSync(path.join(dir, 'complete'))) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  const { wal } = await Wal.open({ dir, sync: 'none', segmentBytes: 1024, preallocate: false });
  const events = [Buffer.alloc(300, 1), Buffer.alloc(300, 2)];
  while (wal.activeSegmentId < segments) await wal.commit(events);
  await wal.close();
  // Not a segment: every reader ignores it (docs/FORMAT.md).
  fs.writeFileSync(path.join(dir, 'complete'), '');
  return dir;
}
