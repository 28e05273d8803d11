/** Bytes kept while in-process readers follow the log: enough for a reader a few batches behind. */
const CAPACITY_BYTES = 4 * 1024 * 1024;

/**
 * The newest bytes the Wal wrote to its log, kept in memory while an
 * in-process reader (`wal.readTransactions`, `ship(wal)`) follows it, so that
 * reader takes what was just written from here rather than reading the file
 * back through the thread pool: one hop fewer between an fsync and the
 * consumer (docs/DESIGN.md, "In-process readers"; docs/BENCHMARKS.md, R1).
 *
 * It holds one run of bytes, [start, start + length) of one segment, exactly
 * as written: bytes enter only once their write has returned whole, and every
 * write made while a reader is attached enters, in file order. So when it
 * holds a segment, it holds that segment up to what is written: a reader at
 * its end has read everything there is. With no reader attached it keeps
 * nothing and costs nothing.
 */
export class RecentWrites {
  private readers = 0;
  private buffer: Buffer | null = null;
  /** The segment held; 0 (no segment has id 0) when none. */
  private segmentId = 0;
  /** File offset of `buffer[0]`. */
  private start = 0;
  private length = 0;

  /** A reader starts following; bytes are kept from the next write on. */
  attach(): void {
    this.readers++;
  }

  /** A reader stopped; the last one to stop lets the memory go. */
  detach(): void {
    this.readers--;
    if (this.readers > 0) return;
    this.buffer = null;
    this.segmentId = 0;
    this.length = 0;
  }

  /** `bytes` were written whole at `offset` of segment `segmentId`. */
  wrote(segmentId: number, offset: number, bytes: Uint8Array): void {
    if (this.readers === 0) return;
    if (segmentId !== this.segmentId || offset !== this.start + this.length || this.length + bytes.length > CAPACITY_BYTES) {
      // A new segment, or full: start again at this write (what came before is on disk).
      this.segmentId = segmentId;
      this.start = offset;
      this.length = 0;
      if (bytes.length > CAPACITY_BYTES) {
        this.start = offset + bytes.length;
        return;
      }
    }
    this.buffer ??= Buffer.allocUnsafeSlow(CAPACITY_BYTES);
    this.buffer.set(bytes, this.length);
    this.length += bytes.length;
  }

  /**
   * The bytes of segment `segmentId` from `offset` to the end of what is
   * written, as a view valid until the next write; null when they are not all
   * here (an older segment, or bytes before the kept run), and the file must
   * be read.
   */
  bytesFrom(segmentId: number, offset: number): Buffer | null {
    if (segmentId !== this.segmentId || offset < this.start || offset > this.start + this.length || this.buffer === null) return null;
    return this.buffer.subarray(offset - this.start, this.length);
  }

  /**
   * False when the writer has written nothing past segment `segmentId` since
   * a reader attached: a reader at the end of that segment need not list the
   * directory to look for the next one (a segment just created holds no
   * record until its first write, which this sees).
   */
  mayHaveSegmentAfter(segmentId: number): boolean {
    return this.segmentId === 0 || this.segmentId > segmentId;
  }
}
