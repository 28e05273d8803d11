import { Histogram, type HistogramSummary } from './histogram.js';

/*
 * What a service owner puts on a dashboard (docs/OPERATIONS.md): counters
 * since open, and histograms (src/histogram.ts) of io latency and batch
 * sizes. On by default: nothing per commit (the stager counts commits
 * anyway); per write and per fsync two clock reads and a few histogram
 * records. `wal.metrics()` reads them into a plain object with stable names.
 */

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
  private readonly writeLatency = new Histogram();
  private readonly fsyncLatency = new Histogram();
  private readonly commitsPerWrite = new Histogram();
  private readonly bytesPerWrite = new Histogram();
  private readonly commitsPerFsync = new Histogram();
  private readonly bytesPerFsync = new Histogram();

  /**
   * An io call that began at `startedAt` (performance.now()) wrote `bytes`
   * holding `commits` commits, and fsync'd them too when `synced`: the call
   * is timed as an fsync then (the fsync is nearly all of it).
   */
  wrote(startedAt: number, bytes: number, commits: number, synced: boolean): void {
    this.commitsWritten += commits;
    this.bytesWritten += bytes;
    this.bytesPerWrite.record(bytes);
    if (commits > 0) this.commitsPerWrite.record(commits);
    if (synced) this.synced({ startedAt, commitsWritten: this.commitsWritten, bytesWritten: this.bytesWritten });
    else this.writeLatency.record((performance.now() - startedAt) * 1000);
  }

  fsyncStarting(): FsyncStart {
    return { startedAt: performance.now(), commitsWritten: this.commitsWritten, bytesWritten: this.bytesWritten };
  }

  /** The fsync begun at `start` returned: what was written then is durable. */
  synced(start: FsyncStart): void {
    const now = performance.now();
    this.fsyncLatency.record((now - start.startedAt) * 1000);
    this.lastFsyncAt = now;
    if (start.commitsWritten > this.commitsDurable) {
      this.commitsPerFsync.record(start.commitsWritten - this.commitsDurable);
      this.bytesPerFsync.record(start.bytesWritten - this.bytesDurable);
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
      writeLatencyUs: this.writeLatency.summary(),
      fsyncLatencyUs: this.fsyncLatency.summary(),
      commitsPerWrite: this.commitsPerWrite.summary(),
      bytesPerWrite: this.bytesPerWrite.summary(),
      commitsPerFsync: this.commitsPerFsync.summary(),
      bytesPerFsync: this.bytesPerFsync.summary(),
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
