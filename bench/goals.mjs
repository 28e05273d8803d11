/*
 * The performance goals of issue 4, as ratios within one run (or absolute
 * figures where no peer applies). `at least` / `at most` bound the value.
 */
const ratio = (workload, metric, numerator, denominator, atLeast) => ({
  workload,
  label: `${workload}: ${numerator} ÷ ${denominator} (${metric})`,
  value: (find) => find(workload, numerator, metric) / find(workload, denominator, metric),
  atLeast,
});
const absolute = (workload, driver, metric, unit, bound) => ({
  workload,
  label: `${workload}: ${driver} ${metric} (${unit})`,
  value: (find) => find(workload, driver, metric),
  ...bound,
});

export const GOALS = [
  ratio('W1', 'opsPerSec', 'segwal-native-per-commit', 'naive-fs-fdatasync', 1.2),
  ratio('W1', 'opsPerSec', 'segwal-native-per-commit', 'raw-probe', 0.9),
  ratio('W2', 'opsPerSec', 'segwal-native-per-commit', 'lmdb', 4),
  absolute('W2', 'segwal-native-per-commit', 'loopDelayP99Ms', 'ms', { atMost: 2 }),
  ratio('W3', 'opsPerSec', 'segwal-native-group', 'lmdb-nosync', 3),
  ratio('W3', 'opsPerSec', 'segwal-native-group', 'segwal-js-group', 1.5),
  ratio('W4', 'opsPerSec', 'segwal-native-none', 'naive-fs-nosync', 1.2),
  ratio('W5', 'mbPerSec', 'segwal-native-per-commit', 'raw-probe', 0.8),
  absolute('W6-4k', 'segwal-native-per-commit', 'mbPerSec', 'MB/s', { atLeast: 1000 }),
  absolute('W6-128', 'segwal-native-per-commit', 'opsPerSec', 'events/s', { atLeast: 2e6 }),
  absolute('W6-4k', 'segwal-native-per-commit', 'rssGrowthMb', 'MiB', { atMost: 64 }),
  absolute('W6-128', 'segwal-native-per-commit', 'rssGrowthMb', 'MiB', { atMost: 64 }),
  absolute('W7', 'segwal-native-group', 'peakRssMb', 'MiB', { atMost: 256 }),
  absolute('R1', 'wal-read-transactions', 'p99Us', 'µs', { atMost: 1000 }),
  absolute('R2', 'follow', 'p99Us', 'µs, within the 50 ms poll', { atMost: 50_000 }),
  ratio('R3', 'opsPerSec', 'replay-dir', 'wal-open', 0.8),
  ratio('S1-128', 'mbPerSec', 'ship', 'bare-publisher', 0.8),
  ratio('S1-4k', 'mbPerSec', 'ship', 'bare-publisher', 0.8),
  ratio('S2', 'opsPerSec', 'segwal-group-shipping', 'segwal-group', 0.9),
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
