import { WRITERS } from './workloads.mjs';

/*
 * The performance goals (issue 16 for W1–W5, tied to the device through the
 * raw probe; issue 13 for the readers R1–R3, issue 14 for shipping S1–S3;
 * issue 4 for the rest), as ratios within one run (or absolute
 * figures where no peer applies). `atLeast` / `atMost` bound the value.
 */
const ratio = (workload, metric, numerator, denominator, bound, { times = 1, of = '' } = {}) => ({
  workload,
  label: `${workload}: ${numerator} ÷ ${times === 1 ? '' : `${times} × `}${denominator}${of} (${metric})`,
  value: (find) => find(workload, numerator, metric) / (times * find(workload, denominator, metric)),
  ...bound,
});
const absolute = (workload, driver, metric, unit, bound) => ({
  workload,
  label: `${workload}: ${driver} ${metric} (${unit})`,
  value: (find) => find(workload, driver, metric),
  ...bound,
});

export const GOALS = [
  ratio('W1', 'opsPerSec', 'segwal-native-per-commit', 'naive-fs-fdatasync', { atLeast: 1.2 }),
  ratio('W1', 'opsPerSec', 'segwal-native-per-commit', 'raw-probe', { atLeast: 0.75 }),
  ratio('W1', 'opsPerSec', 'segwal-native-per-commit-blocking', 'raw-probe', { atLeast: 0.9 }),
  ratio('W1', 'opsPerSec', 'segwal-native-per-commit-blocking', 'sqlite-full', { atLeast: 1 }),
  ratio('W2', 'opsPerSec', 'segwal-native-per-commit', 'lmdb', { atLeast: 3 }),
  ratio('W2', 'opsPerSec', 'segwal-native-per-commit', 'raw-probe', { atLeast: 0.5 }, { times: WRITERS, of: ': the closed-loop ceiling, every fsync shared by all writers' }),
  absolute('W2', 'segwal-native-per-commit', 'loopDelayP99Ms', 'ms', { atMost: 2 }),
  ratio('W3', 'opsPerSec', 'segwal-native-group', 'lmdb-nosync', { atLeast: 2 }),
  ratio('W3', 'opsPerSec', 'segwal-native-group', 'segwal-js-group', { atLeast: 1.5 }),
  // Issue 15: metrics are on by default, so they must cost no more than the noise.
  ratio('W2', 'opsPerSec', 'segwal-native-per-commit', 'segwal-native-per-commit-no-metrics', { atLeast: 0.95 }),
  ratio('W3', 'opsPerSec', 'segwal-native-group', 'segwal-native-group-no-metrics', { atLeast: 0.95 }),
  ratio('W4', 'opsPerSec', 'segwal-native-none', 'naive-fs-nosync', { atLeast: 0.8 }),
  ratio('W5', 'mbPerSec', 'segwal-native-per-commit', 'raw-probe', { atLeast: 0.8 }),
  ratio('W5', 'p99Us', 'segwal-native-per-commit', 'raw-probe', { atMost: 2 }),
  absolute('W6-4k', 'segwal-native-per-commit', 'mbPerSec', 'MB/s', { atLeast: 1000 }),
  absolute('W6-128', 'segwal-native-per-commit', 'opsPerSec', 'events/s', { atLeast: 2e6 }),
  absolute('W6-4k', 'segwal-native-per-commit', 'rssGrowthMb', 'MiB', { atMost: 64 }),
  absolute('W6-128', 'segwal-native-per-commit', 'rssGrowthMb', 'MiB', { atMost: 64 }),
  absolute('W7', 'segwal-native-group', 'peakRssMb', 'MiB', { atMost: 256 }),
  absolute('R1', 'wal-read-transactions', 'p99Us', 'µs', { atMost: 1000 }),
  absolute('R2', 'follow', 'p99Us', 'µs, within the 50 ms poll', { atMost: 50_000 }),
  ratio('R3', 'opsPerSec', 'replay-dir', 'wal-open', { atLeast: 0.8 }),
  ratio('S1-128', 'mbPerSec', 'ship', 'bare-publisher', { atLeast: 0.8 }),
  ratio('S1-4k', 'mbPerSec', 'ship', 'bare-publisher', { atLeast: 0.8 }),
  ratio('S2', 'opsPerSec', 'segwal-group-shipping', 'segwal-group', { atLeast: 0.9 }),
  ratio('S2', 'opsPerSec', 'segwal-group-ship-process', 'segwal-group', { atLeast: 0.9 }),
  ratio('S2', 'opsPerSec', 'segwal-group-ship-process-idle', 'segwal-group', { atLeast: 0.9 }),
  absolute('S3', 'applied', 'p99Us', 'µs', { atMost: 100_000 }),
];

/** Each goal with its measured value and whether it is met. */
export function evaluateGoals(results) {
  const find = (workload, driver, metric) =>
    results.find((result) => result.workload === workload && result.driver === driver)?.[metric] ?? Number.NaN;
  return GOALS.map((goal) => {
    const value = goal.value(find);
    const met = Number.isFinite(value) && (goal.atLeast === undefined || value >= goal.atLeast) && (goal.atMost === undefined || value <= goal.atMost);
    return { workload: goal.workload, label: goal.label, value, atLeast: goal.atLeast ?? null, atMost: goal.atMost ?? null, met };
  });
}
