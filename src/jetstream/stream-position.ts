import type { JetStreamConnection } from './connect.js';
import { lastMessageOnSubject, messageAt } from './get-message.js';
import type { StoredMessage } from './message.js';
import type { ChainPosition } from './message-builder.js';
import { describeStream } from './stream.js';
import { parseWireMessage, type WireMessage } from './wire.js';

/** Where a log's subject stands in its stream: its last message, read from the stream leader. */
export interface StreamPosition extends ChainPosition {
  /** The last message, parsed; null for an empty subject. */
  last: WireMessage | null;
  /** Its stream sequence; 0 for an empty subject. */
  seq: number;
  /** The stream's last sequence, asked before the last message: above `seq` when messages after it were removed. */
  lastSeq: number;
  /** The messages the stream holds, of every subject. */
  messages: number;
}

/**
 * Asks the stream (never local state) where the log's subject stands: the
 * shipper resumes from there, and compares it with what it believes was
 * acknowledged.
 */
export async function streamPosition(
  connection: JetStreamConnection,
  stream: { name: string; allow_direct?: boolean },
  subject: string,
): Promise<StreamPosition> {
  // The stream's state first, then its last message: a message stored in
  // between then sits above `lastSeq`, and a publish expecting `lastSeq` is
  // refused rather than stored after it.
  const { state } = await describeStream(connection, stream.name);
  const counts = { lastSeq: state.last_seq, messages: state.messages };
  const stored = (await lastMessageOnSubject(connection, stream, subject)) ?? (await lastStored(connection, stream, state));
  if (stored === null || stored.subject !== subject) return { last: null, seq: 0, previous: null, resume: null, unfinishedChunk: null, ...counts };
  const last = parseWireMessage(stored.headers, stored.data, `message ${stored.seq} of stream ${stream.name}`);
  const unfinished = last.chunk !== null && last.chunk.offset + last.body.length < last.chunk.total;
  return {
    last,
    seq: stored.seq,
    previous: last.msgId,
    resume: last.resume,
    unfinishedChunk: unfinished ? { commitLsn: last.lastCommitLsn, nextOffset: (last.chunk?.offset ?? 0) + last.body.length } : null,
    ...counts,
  };
}

/**
 * The stream's last stored message, looked for by sequence from its last
 * one down, or null when it holds none. nats-server 2.9.10 answers a
 * last-by-subject get with "no message found" once the subject's last message
 * was deleted, though the subject's earlier messages remain (measured): a
 * shipper's stream takes its log's subject only, so the stream's last message
 * is the subject's (another subject's is a conflict the shipper reports).
 */
async function lastStored(
  connection: JetStreamConnection,
  stream: { name: string; allow_direct?: boolean },
  state: { messages: number; first_seq: number; last_seq: number },
): Promise<StoredMessage | null> {
  if (state.messages === 0) return null;
  for (let seq = state.last_seq; seq >= state.first_seq; seq--) {
    const stored = await messageAt(connection, stream, seq);
    if (stored !== null) return stored;
  }
  return null;
}

/** The commit LSN up to which `message` holds every transaction (the one before a chunked transaction's last piece). */
export function completeUpTo(message: WireMessage | null): number {
  if (message === null) return 0;
  const unfinished = message.chunk !== null && message.chunk.offset + message.body.length < message.chunk.total;
  return unfinished ? message.resume.fromLsn - 1 : message.lastCommitLsn;
}

/**
 * What a stream's sequences say about messages removed from it
 * (docs/REPLICATION.md, "Exactly once"). A shipper's stream takes one
 * subject, has no limits, and only the shipper appends, so the stream gives a
 * new sequence to each message it stores and to nothing else, and only an
 * operator (a purge, a delete) removes one. A purge or a delete keeps the last
 * sequence (and the last message id: a publish expecting it is still stored,
 * after the hole), so the number of sequences given out and no longer held
 * tells that messages went, where the expectations cannot.
 */
export interface Removals {
  /** The stream's last sequence at the look. */
  lastSeq: number;
  /** Sequences up to `lastSeq` that the stream no longer holds. */
  removed: number;
  /** Of those, the ones at or below the last message held (holes under it rather than a tail gone). */
  belowLast: number;
}

export function removalsAt(position: StreamPosition): Removals {
  return { lastSeq: position.lastSeq, removed: position.lastSeq - position.messages, belowLast: position.seq - position.messages };
}

/** The stream's count of sequences given out and no longer held, now. */
export async function removedNow(connection: JetStreamConnection, stream: string): Promise<number> {
  const { state } = await describeStream(connection, stream);
  return state.last_seq - state.messages;
}

/**
 * Whether messages at or below the stream's last one went since `before`: a
 * hole that shipping again after the last message cannot mend (a message
 * deleted in the middle, or a purge that a message stored after). A tail gone
 * is no hole: what it held can be shipped again after what is left. Since
 * `before`, a message stored after its last sequence turned the tail gone
 * then into sequences below the last message; otherwise those are as they were.
 */
export function holeSince(before: Removals, position: StreamPosition): boolean {
  if (position.messages === 0) return false;
  const expected = position.seq > before.lastSeq ? before.removed : before.belowLast;
  return position.seq - position.messages !== expected;
}
