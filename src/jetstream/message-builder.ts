import { CRC_BYTES, LSN_AT, PAYLOAD_AT, TX_BEGIN_AT } from '../format/frame.js';
import { readU64 } from '../format/little-endian.js';
import type { CommitRun } from '../read/log-stream.js';
import {
  commitFrameEncodedSize,
  commitFramesRoom,
  encodeCommitFrames,
  encodeTransaction,
  encodedSize,
  messageId,
  type ResumePoint,
  type WireMessage,
  type WireTransaction,
} from './wire.js';

/** A committed transaction from the source, with the point to resume from after it. */
export interface SourceTransaction extends WireTransaction {
  resume: ResumePoint;
}

/** What the shipper reads: a transaction, or consecutive one-frame transactions as their frames. */
export type SourceItem = SourceTransaction | CommitRun;

/** Where the chain stands: the last message on the stream, and how far into a chunked transaction it got. */
export interface ChainPosition {
  /** The last message's id; null for an empty stream. */
  previous: string | null;
  /** The source's resume point after the last message. */
  resume: ResumePoint | null;
  /** The last message is a piece of this transaction, which goes on at `nextOffset`. */
  unfinishedChunk: { commitLsn: number; nextOffset: number } | null;
}

/** Told of each stretch of a run that went into one message: its last commit LSN, its transactions, their bytes as shipped. */
export type OnPiece = (lastCommitLsn: number, transactions: number, bytes: number) => void;

/** What `add` returns when no message is complete: most calls (one array fewer per transaction). */
const NONE: readonly WireMessage[] = Object.freeze([]);

/**
 * Packs consecutive committed transactions into messages of at most
 * `maxBody` bytes (the message count, not the bytes, limits JetStream's
 * throughput), and cuts a transaction larger than that into chunks that a
 * follower applies only whole. Each message is chained to the one before
 * (docs/REPLICATION.md, "Message layout").
 *
 * A transaction is encoded as it comes, into a buffer the builder keeps
 * (room for `maxBody` of encodings, and for a run's frames before they
 * shrink into theirs), and the message's body is copied out of it whole: nothing
 * holds a transaction, or a view into the reader's window, until the
 * message is full (held, they outlived the young generation and the
 * garbage collector took a fifth of the shipper's time; docs/BENCHMARKS.md,
 * "Reading per record").
 */
export class MessageBuilder {
  private fillingBuffer: Buffer | null = null;
  private filled = 0;
  private firstCommitLsn = 0;
  private lastCommitLsn = 0;
  /** The resume point before the pending transactions: a chunk of the next one resumes there. */
  private resumeBefore: ResumePoint;
  /** The resume point after the last pending transaction. */
  private resumeAfter: ResumePoint;
  private previous: string | null;
  private unfinishedChunk: ChainPosition['unfinishedChunk'];

  constructor(
    private readonly logId: string,
    private readonly maxBody: number,
    start: ChainPosition & { resume: ResumePoint },
  ) {
    this.previous = start.previous;
    this.resumeBefore = start.resume;
    this.resumeAfter = start.resume;
    this.unfinishedChunk = start.unfinishedChunk;
  }

  /** Takes the next transaction; returns the messages that are complete now. */
  add(tx: SourceTransaction): readonly WireMessage[] {
    const chunked = this.unfinishedChunk;
    if (chunked !== null && chunked.commitLsn === tx.commitLsn) {
      this.unfinishedChunk = null;
      return this.chunks(tx, chunked.nextOffset);
    }
    const size = encodedSize(tx);
    const flushed = this.filled + size > this.maxBody ? this.flush() : null;
    if (size > this.maxBody) return flushed === null ? this.chunks(tx, 0) : [flushed, ...this.chunks(tx, 0)];
    const filling = this.filling();
    if (this.filled === 0) this.firstCommitLsn = tx.commitLsn;
    this.filled = encodeTransaction(filling, this.filled, tx);
    this.lastCommitLsn = tx.commitLsn;
    this.resumeAfter = tx.resume;
    return flushed === null ? NONE : [flushed];
  }

  /**
   * Takes a run of one-frame transactions (the reader's CommitRun): each
   * Commit frame is laid down as its transaction's encoding straight from the
   * frames, with no object per transaction. `onPiece` hears of each stretch
   * of the run that went into one message (the shipper counts what is not
   * yet acknowledged by them). Returns the messages that are complete now.
   */
  addRun(run: CommitRun, onPiece: OnPiece): readonly WireMessage[] {
    const { frames } = run;
    let messages: WireMessage[] | null = null;
    // The stretch of frames from `start` that goes into the pending message next: how many, their encodings' bytes, the last one's offset.
    let start = 0;
    let count = 0;
    let bytes = 0;
    let lastAt = 0;
    const place = (end: number) => {
      if (count > 0) {
        const filling = this.filling();
        if (this.filled === 0) this.firstCommitLsn = readU64(frames, start + LSN_AT);
        this.filled = encodeCommitFrames(filling, this.filled, frames, start, end);
        const lastCommitLsn = readU64(frames, lastAt + LSN_AT);
        this.lastCommitLsn = lastCommitLsn;
        // No transaction was open among the run's: a reader resumes right after the last one taken.
        this.resumeAfter = { fromLsn: lastCommitLsn + 1, scanFromLsn: lastCommitLsn + 1 };
        onPiece(lastCommitLsn, count, bytes);
      }
      start = end;
      count = 0;
      bytes = 0;
    };
    for (let at = 0; at < frames.length; ) {
      const length = frames.readUInt32LE(at);
      const size = commitFrameEncodedSize(length);
      const chunked = this.unfinishedChunk;
      if (size > this.maxBody || (chunked !== null && chunked.commitLsn === readU64(frames, at + LSN_AT))) {
        // Chunks, or the rest of them: as a transaction of its own.
        place(at);
        const tx = commitFrameTransaction(frames, at, length);
        onPiece(tx.commitLsn, 1, size);
        (messages ??= []).push(...this.add(tx));
        at += length;
        start = at;
        continue;
      }
      if (this.filled + bytes + size > this.maxBody) {
        place(at);
        (messages ??= []).push(this.flush() as WireMessage);
      }
      count++;
      bytes += size;
      lastAt = at;
      at += length;
    }
    place(frames.length);
    return messages ?? NONE;
  }

  /** The pending transactions as one message, or null when there are none. */
  flush(): WireMessage | null {
    if (this.filled === 0) return null;
    const body = Buffer.from(this.filling().subarray(0, this.filled));
    this.filled = 0;
    return this.chained({
      lastCommitLsn: this.lastCommitLsn,
      firstCommitLsn: this.firstCommitLsn,
      resume: this.resumeAfter,
      chunk: null,
      body,
      finalPiece: true,
    });
  }

  /** The buffer the pending message is laid down in, kept from one message to the next. */
  private filling(): Buffer {
    return (this.fillingBuffer ??= Buffer.allocUnsafe(commitFramesRoom(this.maxBody)));
  }

  private chunks(tx: SourceTransaction, fromOffset: number): WireMessage[] {
    const whole = Buffer.allocUnsafe(encodedSize(tx));
    encodeTransaction(whole, 0, tx);
    const messages: WireMessage[] = [];
    for (let offset = fromOffset; offset < whole.length; offset += this.maxBody) {
      const body = whole.subarray(offset, Math.min(whole.length, offset + this.maxBody));
      const finalPiece = offset + body.length === whole.length;
      messages.push(
        this.chained({
          lastCommitLsn: tx.commitLsn,
          firstCommitLsn: tx.commitLsn,
          // Until its last piece is stored, a reader resumes before the transaction.
          resume: finalPiece ? tx.resume : { fromLsn: tx.commitLsn, scanFromLsn: this.resumeBefore.scanFromLsn },
          chunk: { offset, total: whole.length },
          body,
          finalPiece,
        }),
      );
    }
    return messages;
  }

  private chained(parts: Omit<WireMessage, 'msgId' | 'previous' | 'logId'> & { finalPiece: boolean }): WireMessage {
    const { finalPiece, ...message } = parts;
    const msgId = messageId(this.logId, message.lastCommitLsn, finalPiece ? null : (message.chunk?.offset ?? null));
    const built: WireMessage = { ...message, msgId, previous: this.previous, logId: this.logId };
    this.previous = msgId;
    if (finalPiece) this.resumeBefore = message.resume;
    return built;
  }
}

/** The transaction of the Commit frame at `at` of `frames`, its events left in their batch, as a reader hands it over. */
function commitFrameTransaction(frames: Buffer, at: number, length: number): SourceTransaction {
  const commitLsn = readU64(frames, at + LSN_AT);
  const next = commitLsn + 1;
  return {
    beginLsn: readU64(frames, at + TX_BEGIN_AT),
    commitLsn,
    events: [],
    batch: frames.subarray(at + PAYLOAD_AT, at + length - CRC_BYTES),
    resume: { fromLsn: next, scanFromLsn: next },
  };
}
