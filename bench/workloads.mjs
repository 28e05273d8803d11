import fs from 'node:fs';
import path from 'node:path';
import { Wal, replayDir } from 'segwal';
import { Latencies, watchEventLoop, watchRss } from './measure.mjs';
import { inProcessReader, manySegments, outOfProcessReader } from './readers.mjs';
import { barePublisherThroughput, shipThroughput, steadyLatency, writerUnderShipping } from './shipping.mjs';

/*
 * Each workload opens one driver in a fresh directory, runs for a while and
 * returns its figures. Drivers are listed per workload: the first is segwal's
 * headline driver, the others are what it is compared with.
 */

const SMALL_EVENT = Buffer.alloc(128, 0x5a);
const LARGE_EVENT = Buffer.alloc(1 << 20, 0x5a);
/** The concurrent writers of W2, W3 and W7. */
export const WRITERS = 64;

/** `writers` loops, each awaiting one append at a time until the deadline. */
async function closedLoop(handle, event, durationMs, writers) {
  const latencies = new Latencies();
  const loop = watchEventLoop();
  const deadline = performance.now() + durationMs;
  let ops = 0;
  const started = performance.now();
  const writer = async () => {
    while (performance.now() < deadline) {
      const at = performance.now();
      await handle.append(event);
      latencies.record(at);
      ops++;
    }
  };
  await Promise.all(Array.from({ length: writers }, writer));
  return summarize(ops, event.length, performance.now() - started, latencies, loop.stop());
}

const sequential = (handle, event, durationMs) => closedLoop(handle, event, durationMs, 1);
const concurrent = (handle, event, durationMs) => closedLoop(handle, event, durationMs, WRITERS);

function syncLoop(handle, event, durationMs) {
  const deadline = performance.now() + durationMs;
  let ops = 0;
  const started = performance.now();
  while ((ops & 255) !== 0 || performance.now() < deadline) {
    handle.appendSync(event);
    ops++;
  }
  return summarize(ops, event.length, performance.now() - started, null, null);
}

function summarize(ops, eventBytes, elapsedMs, latencies, loop) {
  const seconds = elapsedMs / 1000;
  return {
    ops,
    opsPerSec: ops / seconds,
    mbPerSec: (ops * eventBytes) / seconds / 1e6,
    p50Us: latencies?.percentile(50) ?? null,
    p99Us: latencies?.percentile(99) ?? null,
    loopDelayP99Ms: loop?.p99Ms ?? null,
  };
}

/** W6: writes a log of `totalBytes` in `eventBytes` events (untimed), then times a replay with onReplay. */
async function replay(dir, eventBytes, totalBytes) {
  const event = Buffer.alloc(eventBytes, 0x5a);
  const perCommit = Math.max(1, Math.floor((256 * 1024) / eventBytes));
  const { wal } = await Wal.open({ dir, sync: 'none' });
  const batch = Array.from({ length: perCommit }, () => event);
  for (let written = 0; written < totalBytes; written += perCommit * eventBytes) wal.commitSync(batch);
  await wal.close();

  const rss = watchRss();
  let events = 0;
  let bytes = 0;
  const started = performance.now();
  await replayDir(dir, {
    onReplay: (replayed) => {
      events += replayed.length;
      for (const one of replayed) bytes += one.length;
      rss.sample();
    },
  });
  const seconds = (performance.now() - started) / 1000;
  const memory = rss.stop();
  return { ops: events, opsPerSec: events / seconds, mbPerSec: bytes / seconds / 1e6, rssGrowthMb: memory.growthMb };
}

/** W7: a W3 flood for `durationMs`; the figure is peak RSS. */
async function flood(handle, durationMs) {
  const rss = watchRss();
  const result = await concurrent(handle, SMALL_EVENT, durationMs);
  return { ...result, peakRssMb: rss.stop().peakMb };
}

export const WORKLOADS = [
  {
    id: 'W1',
    title: 'sequential durable commits, one awaited at a time',
    drivers: [
      'segwal-native-per-commit',
      'segwal-native-per-commit-blocking',
      'segwal-js-per-commit',
      'naive-fs-fdatasync',
      'raw-probe',
      'sqlite-full',
      'level-sync',
      'lmdb',
    ],
    run: (handle, ms) => sequential(handle, SMALL_EVENT, ms),
  },
  {
    id: 'W2',
    title: `${WRITERS} concurrent writers, durable commits`,
    // The raw probe here gives W2's closed-loop ceiling: WRITERS commits per fsync of the device (bench/goals.mjs).
    drivers: [
      'segwal-native-per-commit',
      'segwal-native-per-commit-no-metrics',
      'segwal-js-per-commit',
      'naive-fs-fdatasync',
      'raw-probe',
      'sqlite-full',
      'level-sync',
      'lmdb',
    ],
    run: (handle, ms) => concurrent(handle, SMALL_EVENT, ms),
  },
  {
    id: 'W3',
    title: `${WRITERS} concurrent writers, acknowledged when written`,
    drivers: ['segwal-native-group', 'segwal-native-group-no-metrics', 'segwal-js-group', 'naive-fs-nosync', 'sqlite-off', 'level-nosync', 'lmdb-nosync'],
    run: (handle, ms) => concurrent(handle, SMALL_EVENT, ms),
  },
  {
    id: 'W4',
    title: 'blocking commit loop, no fsync',
    drivers: ['segwal-native-none', 'segwal-js-none', 'naive-fs-nosync', 'sqlite-off', 'lmdb-nosync'],
    run: (handle, ms) => syncLoop(handle, SMALL_EVENT, ms),
  },
  {
    id: 'W5',
    title: '1 MiB events, durable, one at a time',
    drivers: ['segwal-native-per-commit', 'segwal-js-per-commit', 'raw-probe', 'naive-fs-fdatasync'],
    run: (handle, ms) => sequential(handle, LARGE_EVENT, ms),
  },
  {
    id: 'W6-4k',
    title: 'replay with onReplay, 4 KiB events',
    drivers: ['segwal-native-per-commit'],
    replay: { eventBytes: 4096, fullBytes: 1 << 30, quickBytes: 32 << 20 },
  },
  {
    id: 'W6-128',
    title: 'replay with onReplay, 128-byte events',
    drivers: ['segwal-native-per-commit'],
    replay: { eventBytes: 128, fullBytes: 256 << 20, quickBytes: 8 << 20 },
  },
  {
    id: 'W7',
    title: `${WRITERS}-writer flood in group mode: peak RSS`,
    drivers: ['segwal-native-group'],
    flood: { fullMs: 10_000, quickMs: 1_000 },
  },
  {
    id: 'R1',
    title: 'in-process durable reader (wal.readTransactions), per-commit writer: ack → consumer latency',
    drivers: ['wal-read-transactions'],
    scenario: ({ dir, quick }) => inProcessReader(dir, { commits: quick ? 300 : 3000 }),
  },
  {
    id: 'R2',
    title: 'out-of-process follower (readTransactions follow, default 50 ms poll): ack → reader latency',
    drivers: ['follow', 'follow-durable-only'],
    scenario: ({ dir, quick, driver }) => outOfProcessReader(dir, { commits: quick ? 200 : 2000, durableOnly: driver === 'follow-durable-only' }),
  },
  {
    id: 'R3',
    title: 'reading 12,000 segments of 1 KiB (quick: 1,200): segments/s',
    drivers: ['replay-dir', 'wal-open'],
    rounds: true,
    scenario: ({ root, quick, driver }) => manySegments(root, driver, { segments: quick ? 1200 : 12000 }),
  },
  ...[128, 4096].map((eventBytes) => ({
    id: `S1-${eventBytes === 128 ? '128' : '4k'}`,
    title: `shipping ${eventBytes}-byte events to a 3-node JetStream (R3) against a bare publisher of the same bytes, batches and window`,
    drivers: ['ship', 'bare-publisher'],
    rounds: true,
    scenario: ({ dir, quick, driver }) => {
      // Enough for tens of 1 MiB messages, so the steady state is what is measured.
      const size = { eventBytes, totalBytes: (quick ? 8 : 64) << 20 };
      return driver === 'ship' ? shipThroughput(dir, size) : barePublisherThroughput(dir, size);
    },
  })),
  {
    id: 'S2',
    title: `W3 (${WRITERS} writers, group mode) beside a 3-node JetStream: ship() in process, segwal ship in its own (and with it and the servers at idle priority), no shipper`,
    drivers: ['segwal-group-shipping', 'segwal-group-ship-process', 'segwal-group-ship-process-idle', 'segwal-group'],
    rounds: true,
    scenario: ({ dir, quick, driver }) =>
      writerUnderShipping(dir, {
        shipping: {
          'segwal-group-shipping': 'in-process',
          'segwal-group-ship-process': 'separate-process',
          'segwal-group-ship-process-idle': 'separate-process-idle',
          'segwal-group': null,
        }[driver],
        run: (handle) => concurrent(handle, SMALL_EVENT, quick ? ROUND_MS.quick : ROUND_MS.full),
      }),
  },
  {
    id: 'S3',
    title: 'a steady 5,000 commits/s (per-commit), shipped and followed: commit → acknowledged, commit → applied by the follower',
    drivers: ['acknowledged', 'applied'],
    scenario: ({ dir, quick, driver }) => steadyLatency(dir, { durationMs: quick ? 1000 : 10_000, perSecond: 5000, measure: driver }),
  },
];

/**
 * Timed workloads (W1–W5) run in rounds: a full run measures each driver
 * ROUNDS.full times for ROUND_MS, interleaved with the other drivers, and
 * keeps the median round (bench/run.mjs), so a slow spell of the machine or
 * the disk does not land on one driver only.
 */
export const ROUNDS = { quick: 1, full: 3 };
const ROUND_MS = { quick: 300, full: 1000 };
/**
 * Each round first runs its workload untimed on the same handle: a fresh
 * process spends its first few hundred ms compiling and growing its heap
 * (scavenges of 1–4 ms and a first mark-compact), which in a 1 s round made
 * much of W2's loop-delay p99 and commit p99 (docs/BENCHMARKS.md, "Warm-up
 * and cheaper addon arguments").
 */
const WARMUP_MS = { quick: 100, full: 300 };

/** Runs one workload (one round of it) with one driver in a fresh directory under `root`. */
export async function runOne(workload, driver, { quick, root }) {
  const dir = fs.mkdtempSync(path.join(root, `${workload.id}-${driver.id}-`));
  try {
    if (workload.scenario !== undefined) return await workload.scenario({ dir, root, quick, driver: driver.id });
    if (workload.replay !== undefined) {
      const { eventBytes, fullBytes, quickBytes } = workload.replay;
      return await replay(dir, eventBytes, quick ? quickBytes : fullBytes);
    }
    const handle = await driver.open(dir);
    try {
      if (workload.flood !== undefined) return await flood(handle, quick ? workload.flood.quickMs : workload.flood.fullMs);
      await workload.run(handle, quick ? WARMUP_MS.quick : WARMUP_MS.full);
      return await workload.run(handle, quick ? ROUND_MS.quick : ROUND_MS.full);
    } finally {
      await handle.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
