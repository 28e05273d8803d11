import { encodeTransaction, encodedSize, messageId, type ResumePoint, type WireMessage, type WireTransaction } from './wire.js';

/** A committed transaction from the source, with the point to resume from after it. */
export interface SourceTransaction extends WireTransaction {
  resume: ResumePoint;
}

/** Where the chain stands: the last message on the stream, and how far into a chunked transaction it got. */
export interface ChainPosition {
  /** The last message's id; null for an empty stream. */
  previous: string | null;
  /** The source's resume point after the last message. */
  resume: ResumePoint | null;
  /** The last message is a piece of this transaction, which goes on at `nextOffset`. */
  unfinishedChunk: { commitLsn: number; nextOffset: number } | null;
}

/** What `add` returns when no message is complete: most calls (one array fewer per transaction). */
const NONE: readonly WireMessage[] = Object.freeze([]);

/**
 * Packs consecutive committed transactions into messages of at most
 * `maxBody` bytes (the message count, not the bytes, limits JetStream's
 * throughput), and cuts a transaction larger than that into chunks that a
 * follower applies only whole. Each message is chained to the one before
 * (docs/REPLICATION.md, "Message layout").
 *
 * A transaction is encoded as it comes, into a buffer of `maxBody` the
 * builder keeps, and the message's body is copied out of it whole: nothing
 * holds a transaction, or a view into the reader's window, until the
 * message is full (held, they outlived the young generation and the
 * garbage collector took a fifth of the shipper's time; docs/BENCHMARKS.md,
 * "Reading per record").
 */
export class MessageBuilder {
  private filling: Buffer | null = null;
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
    const filling = (this.filling ??= Buffer.allocUnsafe(this.maxBody));
    if (this.filled === 0) this.firstCommitLsn = tx.commitLsn;
    this.filled = encodeTransaction(filling, this.filled, tx);
    this.lastCommitLsn = tx.commitLsn;
    this.resumeAfter = tx.resume;
    return flushed === null ? NONE : [flushed];
  }

  /** The pending transactions as one message, or null when there are none. */
  flush(): WireMessage | null {
    if (this.filled === 0) return null;
    const body = Buffer.from((this.filling as Buffer).subarray(0, this.filled));
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
