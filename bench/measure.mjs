import { monitorEventLoopDelay } from 'node:perf_hooks';

/** Commit latencies in microseconds, summarized as percentiles. */
export class Latencies {
  samples = [];
  record(startedAt) {
    this.samples.push((performance.now() - startedAt) * 1000);
  }
  /** A latency measured elsewhere, in ms. */
  add(ms) {
    this.samples.push(ms * 1000);
  }
  /** p50 and p99 in µs, as the result rows carry them. */
  summary() {
    return { p50Us: this.percentile(50), p99Us: this.percentile(99) };
  }
  percentile(p) {
    if (this.samples.length === 0) return null;
    const sorted = Float64Array.from(this.samples).sort();
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
