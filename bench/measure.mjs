import { monitorEventLoopDelay } from 'node:perf_hooks';

/** The median of `values` (the mean of the two middle ones for an even count). */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** How many latencies are kept: a round of the fastest driver fits; a 10 s flood keeps its last ~2 s. */
const LATENCY_CAPACITY = 1 << 21;

/**
 * Commit latencies in microseconds, summarized as percentiles. A ring of fixed
 * size, allocated up front: a growing array held every sample, and in W7 its
 * growth (tens of MiB at a million commits a second) was the harness's memory,
 * not the store's.
 */
export class Latencies {
  samples = new Float64Array(LATENCY_CAPACITY);
  count = 0;
  record(startedAt) {
    this.add(performance.now() - startedAt);
  }
  /** A latency measured elsewhere, in ms. */
  add(ms) {
    this.samples[this.count % LATENCY_CAPACITY] = ms * 1000;
    this.count++;
  }
  /** p50 and p99 in µs, as the result rows carry them. */
  summary() {
    return { p50Us: this.percentile(50), p99Us: this.percentile(99) };
  }
  percentile(p) {
    if (this.count === 0) return null;
    const sorted = this.samples.slice(0, Math.min(this.count, LATENCY_CAPACITY)).sort();
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
  }
}

/** Event-loop delay while a workload runs (perf_hooks histogram, 1 ms resolution floor). */
export function watchEventLoop() {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  return {
    stop() {
      histogram.disable();
      return { p99Ms: histogram.percentile(99) / 1e6, maxMs: histogram.max / 1e6 };
    },
  };
}

/** Peak resident set size while a workload runs, sampled every 20 ms. */
export function watchRss() {
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 20);
  return {
    /** Also call from hot synchronous loops, where the timer cannot fire. */
    sample() {
      peak = Math.max(peak, process.memoryUsage.rss());
    },
    stop() {
      clearInterval(timer);
      this.sample();
      return { baselineMb: baseline / 2 ** 20, peakMb: peak / 2 ** 20, growthMb: (peak - baseline) / 2 ** 20 };
    },
  };
}
