import { DirectMsgHeaders, type StoredMsg } from '@nats-io/jetstream';
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
export async function lastMessageOnSubject(
  connection: JetStreamConnection,
  stream: { name: string; allow_direct?: boolean },
  subject: string,
): Promise<StoredMessage | null> {
  let message: StoredMsg | null;
  try {
    message =
      stream.allow_direct === true
        ? await connection.jsm.direct.getMessage(stream.name, { last_by_subj: subject })
        : await connection.jsm.streams.getMessage(stream.name, { last_by_subj: subject });
  } catch (error) {
    throw toReplicationError(error, `last message on ${subject} in stream ${stream.name}`);
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
