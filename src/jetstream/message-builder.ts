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

/**
 * Packs consecutive committed transactions into messages of at most
 * `maxBody` bytes (the message count, not the bytes, limits JetStream's
 * throughput), and cuts a transaction larger than that into chunks that a
 * follower applies only whole. Each message is chained to the one before
 * (docs/REPLICATION.md, "Message layout").
 */
export class MessageBuilder {
  private pending: SourceTransaction[] = [];
  private pendingBytes = 0;
  /** The resume point before the pending transactions: a chunk of the next one resumes there. */
  private resumeBefore: ResumePoint;
  private previous: string | null;
  private unfinishedChunk: ChainPosition['unfinishedChunk'];

  constructor(
    private readonly logId: string,
    private readonly maxBody: number,
    start: ChainPosition & { resume: ResumePoint },
  ) {
    this.previous = start.previous;
    this.resumeBefore = start.resume;
    this.unfinishedChunk = start.unfinishedChunk;
  }

  /** Takes the next transaction; returns the messages that are complete now. */
  add(tx: SourceTransaction): WireMessage[] {
    const chunked = this.unfinishedChunk;
    if (chunked !== null && chunked.commitLsn === tx.commitLsn) {
      this.unfinishedChunk = null;
      return this.chunks(tx, chunked.nextOffset);
    }
    const size = encodedSize(tx);
    const messages: WireMessage[] = [];
    if (this.pendingBytes + size > this.maxBody) {
      const flushed = this.flush();
      if (flushed !== null) messages.push(flushed);
    }
    if (size > this.maxBody) return [...messages, ...this.chunks(tx, 0)];
    this.pending.push(tx);
    this.pendingBytes += size;
    return messages;
  }

  /** The pending transactions as one message, or null when there are none. */
  flush(): WireMessage | null {
    const txs = this.pending;
    if (txs.length === 0) return null;
    const body = Buffer.allocUnsafe(this.pendingBytes);
    let at = 0;
    for (const tx of txs) at = encodeTransaction(body, at, tx);
    const first = txs[0] as SourceTransaction;
    const last = txs[txs.length - 1] as SourceTransaction;
    this.pending = [];
    this.pendingBytes = 0;
    return this.chained({
      lastCommitLsn: last.commitLsn,
      firstCommitLsn: first.commitLsn,
      resume: last.resume,
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
