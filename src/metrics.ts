import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

/*
 * What a service owner puts on a dashboard (docs/OPERATIONS.md): counters
 * since open, and histograms (perf_hooks, recorded in C++, a few tens of
 * nanoseconds each) of io latency and batch sizes. On by default: nothing
 * per commit (the stager counts commits anyway); per write and per fsync a
 * clock read and a few histogram records. `wal.metrics()` reads them into a
 * plain object with stable names.
 */

/** A histogram's figures; every field 0 before anything was recorded. */
export interface HistogramSummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export interface WalMetrics {
  /** Transactions committed and written to the OS since open (durable or not: see waitingForFsync). */
  commits: number;
  /** Bytes handed to write(2) since open (frames, including their headers and CRCs). */
  bytesWritten: number;
  /** Each write of a batch of frames without an fsync: its latency in µs (the io call, any thread hop included). */
  writeLatencyUs: HistogramSummary;
  /** Each fdatasync, and each write + fdatasync made in one call (per-commit mode's usual round): its latency in µs. */
  fsyncLatencyUs: HistogramSummary;
  /** Per write that completed commits: how many (a write of begin() records only is not counted); and every write's bytes. */
  commitsPerWrite: HistogramSummary;
  bytesPerWrite: HistogramSummary;
  /** Per fsync that made commits durable: how many, and the bytes written since the fsync before it. */
  commitsPerFsync: HistogramSummary;
  bytesPerFsync: HistogramSummary;
  /** Segments sealed and replaced by a new one. */
  rotations: number;
  /** truncateUpTo calls (direct or from checkpoint) that deleted at least one segment, and the segments deleted. */
  truncations: number;
  segmentsDeleted: number;
  /** Since the last fsync returned, in ms; null before the first. */
  msSinceLastFsync: number | null;
  /** Commits staged and not yet written; commits written and waiting for an fsync. */
  waitingForWrite: number;
  waitingForFsync: number;
  /** The log refuses writes after a failure (docs/DURABILITY.md). */
  poisoned: boolean;
}

/** Taken when an fsync starts: what it will make durable (everything written by then). */
export interface FsyncStart {
  startedAt: number;
  commitsWritten: number;
  bytesWritten: number;
}

/**
 * What the Wal tells the metrics as it goes; the gauges are read from it when
 * asked. Each write carries the commits staged in its bytes, and an fsync
 * makes durable what was written when it started, so the counts per write and
 * per fsync and the two queue depths are exact whatever the sync mode.
 */
export class MetricsRecorder {
  private commitsWritten = 0;
  private commitsDurable = 0;
  private bytesWritten = 0;
  private bytesDurable = 0;
  private rotations = 0;
  private truncations = 0;
  private segmentsDeleted = 0;
  private lastFsyncAt: number | null = null;
  private readonly writeLatency = createHistogram();
  private readonly fsyncLatency = createHistogram();
  private readonly commitsPerWrite = createHistogram();
  private readonly bytesPerWrite = createHistogram();
  private readonly commitsPerFsync = createHistogram();
  private readonly bytesPerFsync = createHistogram();

  /**
   * An io call that began at `startedAt` (performance.now()) wrote `bytes`
   * holding `commits` commits, and fsync'd them too when `synced`: the call
   * is timed as an fsync then (the fsync is nearly all of it).
   */
  wrote(startedAt: number, bytes: number, commits: number, synced: boolean): void {
    this.commitsWritten += commits;
    this.bytesWritten += bytes;
    record(this.bytesPerWrite, bytes);
    if (commits > 0) record(this.commitsPerWrite, commits);
    if (synced) this.synced({ startedAt, commitsWritten: this.commitsWritten, bytesWritten: this.bytesWritten });
    else recordMicros(this.writeLatency, startedAt);
  }

  fsyncStarting(): FsyncStart {
    return { startedAt: performance.now(), commitsWritten: this.commitsWritten, bytesWritten: this.bytesWritten };
  }

  /** The fsync begun at `start` returned: what was written then is durable. */
  synced(start: FsyncStart): void {
    recordMicros(this.fsyncLatency, start.startedAt);
    this.lastFsyncAt = performance.now();
    if (start.commitsWritten > this.commitsDurable) {
      record(this.commitsPerFsync, start.commitsWritten - this.commitsDurable);
      record(this.bytesPerFsync, start.bytesWritten - this.bytesDurable);
      this.commitsDurable = start.commitsWritten;
    }
    this.bytesDurable = Math.max(this.bytesDurable, start.bytesWritten);
  }

  rotated(): void {
    this.rotations++;
  }

  truncated(segments: number): void {
    if (segments === 0) return;
    this.truncations++;
    this.segmentsDeleted += segments;
  }

  /** `commitsStaged`: the transactions committed since open, written or not. */
  read({ commitsStaged, poisoned }: { commitsStaged: number; poisoned: boolean }): WalMetrics {
    return {
      commits: this.commitsWritten,
      bytesWritten: this.bytesWritten,
      writeLatencyUs: summarize(this.writeLatency),
      fsyncLatencyUs: summarize(this.fsyncLatency),
      commitsPerWrite: summarize(this.commitsPerWrite),
      bytesPerWrite: summarize(this.bytesPerWrite),
      commitsPerFsync: summarize(this.commitsPerFsync),
      bytesPerFsync: summarize(this.bytesPerFsync),
      rotations: this.rotations,
      truncations: this.truncations,
      segmentsDeleted: this.segmentsDeleted,
      msSinceLastFsync: this.lastFsyncAt === null ? null : performance.now() - this.lastFsyncAt,
      waitingForWrite: commitsStaged - this.commitsWritten,
      waitingForFsync: this.commitsWritten - this.commitsDurable,
      poisoned,
    };
  }
}

/** perf_hooks histograms take integers ≥ 1: a sub-µs call counts as 1 µs. */
function record(histogram: RecordableHistogram, value: number): void {
  histogram.record(Math.max(1, Math.round(value)));
}

function recordMicros(histogram: RecordableHistogram, startedAt: number): void {
  record(histogram, (performance.now() - startedAt) * 1000);
}

function summarize(histogram: RecordableHistogram): HistogramSummary {
  if (histogram.count === 0) return { count: 0, p50: 0, p99: 0, max: 0, mean: 0 };
  return { count: histogram.count, p50: histogram.percentile(50), p99: histogram.percentile(99), max: histogram.max, mean: histogram.mean };
}
