/*
 * A histogram of positive integers for wal.metrics(), kept in JavaScript.
 * perf_hooks' histograms record through a call into C++: ~90 ns each on the
 * machines here, and a write records three, which made ~12 % of a blocking
 * commit in sync none (docs/BENCHMARKS.md, "Histograms in JavaScript"). Here
 * a record is an index computation and an increment.
 *
 * The buckets are HdrHistogram's idea at three significant figures: every
 * value below 2^EXACT_BITS has a bucket of its own; above, each power of two
 * is split into 2^SUB_BITS buckets of equal width, so a bucket is never wider
 * than 1/1024 of the values in it. Those are allocated as the first value
 * lands in them. Count, max and sum are kept exactly.
 */

const SUB_BITS = 10;
const SUB_BUCKETS = 2 ** SUB_BITS;
const EXACT_BITS = SUB_BITS + 1;
/** Values below this are counted exactly. */
const EXACT_LIMIT = 2 ** EXACT_BITS;
const TWO_POW_32 = 2 ** 32;

/** A histogram's figures; every field 0 before anything was recorded. */
export interface HistogramSummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export class Histogram {
  private readonly exact = new Float64Array(EXACT_LIMIT);
  /** For each power of two from 2^EXACT_BITS on, its buckets, or undefined while none holds a value. */
  private readonly powers: (Float64Array | undefined)[] = [];
  private count = 0;
  private max = 0;
  private sum = 0;

  /** Counts `value`, rounded to an integer; anything below 1 counts as 1. */
  record(value: number): void {
    const v = value >= 1 ? Math.min(Math.round(value), Number.MAX_SAFE_INTEGER) : 1;
    this.count++;
    this.sum += v;
    if (v > this.max) this.max = v;
    if (v < EXACT_LIMIT) {
      (this.exact[v] as number)++;
      return;
    }
    const power = highestBit(v);
    const width = 2 ** (power - SUB_BITS);
    const buckets = (this.powers[power - EXACT_BITS] ??= new Float64Array(SUB_BUCKETS));
    (buckets[Math.floor(v / width) - SUB_BUCKETS] as number)++;
  }

  /**
   * The median and the 99th percentile by nearest rank (the value with
   * ceil(p% × count) values at or below it), each the highest value its
   * bucket stands for, never above the max; the max and the mean exactly.
   */
  summary(): HistogramSummary {
    if (this.count === 0) return { count: 0, p50: 0, p99: 0, max: 0, mean: 0 };
    const ranks = [rank(50, this.count), rank(99, this.count)];
    const found: number[] = [];
    let seen = 0;
    const take = (bucketCount: number, highest: number): boolean => {
      seen += bucketCount;
      while (found.length < ranks.length && seen >= (ranks[found.length] as number)) found.push(Math.min(highest, this.max));
      return found.length === ranks.length;
    };
    let done = false;
    for (let v = 1; v < EXACT_LIMIT && !done; v++) done = take(this.exact[v] as number, v);
    for (let i = 0; i < this.powers.length && !done; i++) {
      const buckets = this.powers[i];
      if (buckets === undefined) continue;
      const width = 2 ** (i + EXACT_BITS - SUB_BITS);
      for (let b = 0; b < SUB_BUCKETS && !done; b++) done = take(buckets[b] as number, (SUB_BUCKETS + b + 1) * width - 1);
    }
    const [p50, p99] = found as [number, number];
    return { count: this.count, p50, p99, max: this.max, mean: this.sum / this.count };
  }
}

function rank(percentile: number, count: number): number {
  return Math.max(1, Math.ceil((percentile / 100) * count));
}

/** floor(log2(v)) of an integer 1 ≤ v ≤ 2^53. */
function highestBit(v: number): number {
  return v < TWO_POW_32 ? 31 - Math.clz32(v) : 63 - Math.clz32(Math.floor(v / TWO_POW_32));
}
