/**
 * The bytes encoded but not yet written for one segment. Frames are encoded
 * straight into a reusable buffer; `take` hands the filled part to a write and
 * switches to a second buffer, so an async write in flight never sees new
 * bytes. `recycle` gives the buffer back once the write is done.
 */
const INITIAL_BYTES = 64 * 1024;
/** Buffers grown past this (for a rare huge commit) are not kept for reuse. */
const MAX_RETAINED_BYTES = 16 * 1024 * 1024;

export interface StagedChunk {
  bytes: Buffer;
  /** LSN of the last record in `bytes`. */
  lastLsn: number;
  /** Transactions whose commit is in `bytes`. */
  commits: number;
  /** The whole buffer `bytes` is a view of, for `recycle`. */
  readonly owner: Buffer;
}

export class Staging {
  private buffer: Buffer;
  private spare: Buffer | null = null;
  private used = 0;
  private lastLsn = 0;
  private commits = 0;

  constructor() {
    this.buffer = Buffer.allocUnsafe(INITIAL_BYTES);
  }

  get stagedBytes(): number {
    return this.used;
  }

  /** Room for `bytes` more bytes; returns the buffer and the offset to write them at. */
  reserve(bytes: number): { target: Buffer; offset: number } {
    const needed = this.used + bytes;
    if (needed > this.buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, this.buffer.length * 2));
      this.buffer.copy(grown, 0, 0, this.used);
      this.buffer = grown;
    }
    const offset = this.used;
    this.used = needed;
    return { target: this.buffer, offset };
  }

  /** Marks the records reserved so far as ending at `lsn`; `commits` of them end a transaction. */
  recordsEndAt(lsn: number, commits: number): void {
    this.lastLsn = lsn;
    this.commits += commits;
  }

  /** The staged bytes, or null when there are none; staging continues in another buffer. */
  take(): StagedChunk | null {
    if (this.used === 0) return null;
    const chunk = { bytes: this.buffer.subarray(0, this.used), lastLsn: this.lastLsn, commits: this.commits, owner: this.buffer };
    this.buffer = this.spare ?? Buffer.allocUnsafe(INITIAL_BYTES);
    this.spare = null;
    this.used = 0;
    this.commits = 0;
    return chunk;
  }

  /** Returns a taken chunk's buffer for reuse once its write has finished. */
  recycle(chunk: StagedChunk): void {
    const buffer = chunk.owner;
    if (buffer.length <= MAX_RETAINED_BYTES && (this.spare === null || this.spare.length < buffer.length)) this.spare = buffer;
  }
}
