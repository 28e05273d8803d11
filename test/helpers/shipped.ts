import { WalError } from '../../src/errors.js';
import { messageAt } from '../../src/jetstream/get-message.js';
import { decodeTransactions, describeStream, parseWireMessage, readStream, type JetStreamConnection, type StoredMessage } from '../../src/jetstream/index.js';

/** How long a read of the stream is retried while the cluster recovers from a fault (an election takes 5-8 s). */
const RETRY_MS = 30_000;
/**
 * Reads through a consumer failed this many times in a row: the rest is read
 * message by message from the stream leader. After a kill of the stream
 * leader, 2.9.10 can leave the creation of a consumer unanswered: in 4 of 16
 * kills here for one or two 5 s timeouts after the new leader was elected,
 * and once in a `npm run torture:ship` for all of the 30 s the read was
 * retried, while the stream took publishes (docs/REPLICATION.md, "What the
 * 3.4 clients do on 2.9.10"). A get by sequence needs no consumer.
 */
const CONSUMER_FAILURES_BEFORE_GETS = 2;
/** Gets asked at a time: a round's stream holds tens of thousands of messages, one request each. */
const GETS_IN_FLIGHT = 64;

/** A transaction as the stream holds it, events as text. */
export interface ShippedTx {
  beginLsn: number;
  commitLsn: number;
  events: string[];
}

/**
 * Reads what a stream holds for a log, checked the way a follower must: every
 * message parses (CRC, ids), the chain has no break, chunks join in order.
 * `catchUp()` reads the messages stored since the last call, so a test that
 * checks the stream after every fault reads each message once.
 */
export class ShippedReader {
  /** The transactions read so far, in stream order. */
  readonly transactions: ShippedTx[] = [];
  readonly logIds = new Set<string>();
  messages = 0;
  /** Transactions that came in several messages (chunks). */
  chunkedTransactions = 0;
  private nextSeq = 1;
  private previous: string | null = null;
  private chunks: Buffer[] = [];

  constructor(
    private readonly connection: JetStreamConnection,
    private readonly stream: string,
    /** 0: read by gets from the start (a test of the gets themselves). */
    private readonly consumerFailuresBeforeGets = CONSUMER_FAILURES_BEFORE_GETS,
  ) {}

  /**
   * Reads up to the stream's last message now; returns the transactions it
   * completed. A read that fails with WAL_REPLICATION (a request during an
   * election, a consumer gone with its server) goes on from the next message,
   * for up to RETRY_MS.
   */
  async catchUp(): Promise<ShippedTx[]> {
    const added: ShippedTx[] = [];
    const deadline = Date.now() + RETRY_MS;
    let consumerFailures = 0;
    for (;;) {
      try {
        await this.readTo(added, consumerFailures >= this.consumerFailuresBeforeGets ? 'gets' : 'consumer');
        break;
      } catch (error) {
        if (!(error instanceof WalError) || error.code !== 'WAL_REPLICATION' || Date.now() > deadline) throw error;
        consumerFailures++;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    // One by one: spreading a round's whole stream (over 100,000 transactions) overflows the call stack.
    for (const tx of added) this.transactions.push(tx);
    return added;
  }

  private async readTo(added: ShippedTx[], through: 'consumer' | 'gets'): Promise<void> {
    const { state } = await describeStream(this.connection, this.stream);
    if (state.messages === 0 || state.last_seq < this.nextSeq) return;
    if (through === 'gets') {
      while (this.nextSeq <= state.last_seq) {
        const seqs = Array.from({ length: Math.min(GETS_IN_FLIGHT, state.last_seq - this.nextSeq + 1) }, (_, i) => this.nextSeq + i);
        const got = await Promise.all(seqs.map((seq) => messageAt(this.connection, { name: this.stream }, seq)));
        for (const [i, stored] of got.entries()) {
          if (stored === null) throw new Error(`message ${seqs[i]} of stream ${this.stream} is missing (its last is ${state.last_seq})`);
          this.take(stored, added);
        }
      }
      return;
    }
    const controller = new AbortController();
    const messages = readStream(this.connection, { stream: this.stream, fromSeq: this.nextSeq, maxBytesInFlight: 8 * 1024 * 1024, signal: controller.signal });
    for await (const stored of messages) {
      this.take(stored, added);
      if (stored.seq >= state.last_seq) controller.abort();
    }
  }

  /** Checks one stored message (parse, chain, chunks) and adds the transactions it completes. */
  private take(stored: StoredMessage, added: ShippedTx[]): void {
    const message = parseWireMessage(stored.headers, stored.data, `message ${stored.seq}`);
    if (message.previous !== this.previous) throw new Error(`message ${stored.seq} (${message.msgId}) follows ${String(message.previous)}, not ${String(this.previous)}`);
    this.previous = message.msgId;
    this.logIds.add(message.logId);
    this.messages++;
    this.nextSeq = stored.seq + 1;
    let body: Buffer | null = Buffer.from(message.body);
    if (message.chunk !== null) {
      const expectedOffset = this.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
      if (message.chunk.offset !== expectedOffset) throw new Error(`message ${stored.seq}: chunk at ${message.chunk.offset}, expected ${expectedOffset}`);
      this.chunks.push(body);
      body = message.chunk.offset + message.body.length === message.chunk.total ? Buffer.concat(this.chunks) : null;
      if (body !== null) {
        this.chunks = [];
        this.chunkedTransactions++;
      }
    }
    if (body !== null) {
      for (const tx of decodeTransactions(body, `message ${stored.seq}`)) {
        added.push({ beginLsn: tx.beginLsn, commitLsn: tx.commitLsn, events: tx.events.map((event) => Buffer.from(event).toString()) });
      }
    }
  }
}

/** Everything a stream holds for a log, read back from sequence 1 and checked (ShippedReader). */
export async function readShipped(connection: JetStreamConnection, stream: string): Promise<ShippedReader> {
  const reader = new ShippedReader(connection, stream);
  await reader.catchUp();
  return reader;
}
