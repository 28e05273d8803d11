import { DirectMsgHeaders, type DirectMsgRequest, type MsgRequest, type StoredMsg } from '@nats-io/jetstream';
import type { JetStreamConnection } from './connect.js';
import { toReplicationError } from './errors.js';
import { fromNatsHeaders, type StoredMessage } from './message.js';

/** Headers a direct get adds to the stored ones (stream, sequence, subject, time…); they are left out. */
const DIRECT_GET_HEADERS: ReadonlySet<string> = new Set(Object.values(DirectMsgHeaders));

/**
 * The stream's last message on `subject`, or null when it holds none. A
 * stream with `allow_direct` is asked with a direct get, which any replica
 * may answer (a follower possibly from behind the leader); otherwise the
 * stream leader answers. Pass the stream's config as ensureStream or
 * describeStream report it: a direct get to a stream without `allow_direct`
 * would go unanswered until the timeout.
 */
export function lastMessageOnSubject(connection: JetStreamConnection, stream: StreamRef, subject: string): Promise<StoredMessage | null> {
  return getMessage(connection, stream, { last_by_subj: subject }, `last message on ${subject} in stream ${stream.name}`);
}

/** The stream's first message on `subject` at or after `fromSeq`, or null when it holds none; asked as lastMessageOnSubject asks. */
export function firstMessageOnSubject(connection: JetStreamConnection, stream: StreamRef, subject: string, fromSeq: number): Promise<StoredMessage | null> {
  return getMessage(connection, stream, { seq: fromSeq, next_by_subj: subject }, `first message on ${subject} in stream ${stream.name}`);
}

/** The stream's message at sequence `seq`, or null when it holds none there (never stored, or removed); asked as lastMessageOnSubject asks. */
export function messageAt(connection: JetStreamConnection, stream: StreamRef, seq: number): Promise<StoredMessage | null> {
  return getMessage(connection, stream, { seq }, `message ${seq} of stream ${stream.name}`);
}

interface StreamRef {
  name: string;
  allow_direct?: boolean;
}

async function getMessage(connection: JetStreamConnection, stream: StreamRef, query: DirectMsgRequest, what: string): Promise<StoredMessage | null> {
  let message: StoredMsg | null;
  try {
    message =
      stream.allow_direct === true
        ? await connection.jsm.direct.getMessage(stream.name, query)
        : // The server's message get takes the same queries as its direct get (next_by_subj since 2.9); the client's type lists fewer.
          await connection.jsm.streams.getMessage(stream.name, query as MsgRequest);
  } catch (error) {
    throw toReplicationError(error, what);
  }
  if (message === null) return null;
  return {
    subject: message.subject,
    seq: message.seq,
    headers: fromNatsHeaders(message.header, DIRECT_GET_HEADERS),
    data: message.data,
    time: message.time,
  };
}
