import type { JetStreamConnection } from './connect.js';
import { lastMessageOnSubject } from './get-message.js';
import type { ChainPosition } from './message-builder.js';
import { parseWireMessage, type WireMessage } from './wire.js';

/** Where a log's subject stands in its stream: its last message, read from the stream leader. */
export interface StreamPosition extends ChainPosition {
  /** The last message, parsed; null for an empty subject. */
  last: WireMessage | null;
  /** Its stream sequence; 0 for an empty subject. */
  seq: number;
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
  const stored = await lastMessageOnSubject(connection, stream, subject);
  if (stored === null) return { last: null, seq: 0, previous: null, resume: null, unfinishedChunk: null };
  const last = parseWireMessage(stored.headers, stored.data, `message ${stored.seq} of stream ${stream.name}`);
  const unfinished = last.chunk !== null && last.chunk.offset + last.body.length < last.chunk.total;
  return {
    last,
    seq: stored.seq,
    previous: last.msgId,
    resume: last.resume,
    unfinishedChunk: unfinished ? { commitLsn: last.lastCommitLsn, nextOffset: (last.chunk?.offset ?? 0) + last.body.length } : null,
  };
}

/** The commit LSN up to which `message` holds every transaction (the one before a chunked transaction's last piece). */
export function completeUpTo(message: WireMessage | null): number {
  if (message === null) return 0;
  const unfinished = message.chunk !== null && message.chunk.offset + message.body.length < message.chunk.total;
  return unfinished ? message.resume.fromLsn - 1 : message.lastCommitLsn;
}
