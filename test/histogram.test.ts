import { describe, expect, it } from 'vitest';
import { Histogram } from '../src/histogram.js';

/*
 * The histogram behind wal.metrics(): every figure is checked against the
 * recorded values themselves, sorted, with percentiles by nearest rank.
 */

/** A seeded generator, so a failure can be run again as it was. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

function nearestRank(sorted: readonly number[], percentile: number): number {
  return sorted[Math.max(1, Math.ceil((percentile / 100) * sorted.length)) - 1] as number;
}

function recordAll(values: readonly number[]): Histogram {
  const histogram = new Histogram();
  for (const value of values) histogram.record(value);
  return histogram;
}

const sum = (values: readonly number[]) => values.reduce((total, value) => total + value, 0);

describe('Histogram', () => {
  it('reads all zeros before anything is recorded', () => {
    expect(new Histogram().summary()).toEqual({ count: 0, p50: 0, p99: 0, max: 0, mean: 0 });
  });

  it('values below 2048 are counted exactly: p50 and p99 are the values of those ranks', () => {
    const next = random(1);
    const values = Array.from({ length: 5_000 }, () => 1 + Math.floor(next() * 2_047));
    const sorted = [...values].sort((a, b) => a - b);
    expect(recordAll(values).summary()).toEqual({
      count: values.length,
      p50: nearestRank(sorted, 50),
      p99: nearestRank(sorted, 99),
      max: sorted.at(-1),
      mean: sum(values) / values.length,
    });
  });

  it('larger values keep three significant figures: a percentile is at most 1/1024 above its rank’s value; max and mean are exact', () => {
    const next = random(2);
    // Spread over every power of two up to 2^50, past the 32-bit boundary.
    const values = Array.from({ length: 20_000 }, () => Math.floor(2 ** (next() * 50)));
    const sorted = [...values].sort((a, b) => a - b);
    const summary = recordAll(values).summary();
    for (const [percentile, figure] of [
      [50, summary.p50],
      [99, summary.p99],
    ] as const) {
      const exact = nearestRank(sorted, percentile);
      expect(figure).toBeGreaterThanOrEqual(exact);
      expect(figure).toBeLessThanOrEqual(exact * (1 + 1 / 1024));
    }
    expect(summary.count).toBe(values.length);
    expect(summary.max).toBe(sorted.at(-1));
    expect(summary.mean).toBe(sum(values) / values.length);
  });

  it('a percentile never reads above the largest value recorded', () => {
    // 2048 shares its bucket with 2049, and 4094 with 4095: the max caps both.
    expect(recordAll([2_048]).summary()).toMatchObject({ p50: 2_048, p99: 2_048, max: 2_048 });
    expect(recordAll([4_094, 4_094]).summary()).toMatchObject({ p50: 4_094, p99: 4_094, max: 4_094 });
    expect(recordAll([Number.MAX_SAFE_INTEGER]).summary()).toMatchObject({ p50: Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER });
  });

  it('values are rounded to integers and anything below 1 counts as 1 (a sub-µs call)', () => {
    expect(recordAll([0.2, 0, -5, 2.5, 7.4]).summary()).toEqual({ count: 5, p50: 1, p99: 7, max: 7, mean: (1 + 1 + 1 + 3 + 7) / 5 });
  });
});
