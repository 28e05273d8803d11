import { decodeTransactions, describeStream, parseWireMessage, readStream, type JetStreamConnection } from '../../src/jetstream/index.js';

/** A transaction as the stream holds it, events as text. */
export interface ShippedTx {
  beginLsn: number;
  commitLsn: number;
  events: string[];
}

/**
 * Everything a stream holds for a log, read back from sequence 1 and checked
 * the way a follower must: every message parses (CRC, ids), the chain has no
 * break, chunks join in order. Returns the transactions in stream order and
 * the number of messages.
 */
export async function readShipped(connection: JetStreamConnection, stream: string): Promise<{ transactions: ShippedTx[]; messages: number; logIds: Set<string> }> {
  const { state } = await describeStream(connection, stream);
  const transactions: ShippedTx[] = [];
  const logIds = new Set<string>();
  let previous: string | null = null;
  let chunks: Buffer[] = [];
  let messages = 0;
  if (state.messages === 0) return { transactions, messages, logIds };
  const controller = new AbortController();
  for await (const stored of readStream(connection, { stream, fromSeq: 1, maxBytesInFlight: 8 * 1024 * 1024, signal: controller.signal })) {
    const message = parseWireMessage(stored.headers, stored.data, `message ${stored.seq}`);
    if (message.previous !== previous) throw new Error(`message ${stored.seq} (${message.msgId}) follows ${String(message.previous)}, not ${String(previous)}`);
    previous = message.msgId;
    logIds.add(message.logId);
    messages++;
    let body: Buffer | null = Buffer.from(message.body);
    if (message.chunk !== null) {
      const expectedOffset = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
      if (message.chunk.offset !== expectedOffset) throw new Error(`message ${stored.seq}: chunk at ${message.chunk.offset}, expected ${expectedOffset}`);
      chunks.push(body);
      body = message.chunk.offset + message.body.length === message.chunk.total ? Buffer.concat(chunks) : null;
      if (body !== null) chunks = [];
    }
    if (body !== null) {
      for (const tx of decodeTransactions(body, `message ${stored.seq}`)) {
        transactions.push({ beginLsn: tx.beginLsn, commitLsn: tx.commitLsn, events: tx.events.map((event) => Buffer.from(event).toString()) });
      }
    }
    if (stored.seq >= state.last_seq) controller.abort();
  }
  return { transactions, messages, logIds };
}
