import { DeliverPolicy, type ConsumerMessages, type ConsumerNotification } from '@nats-io/jetstream';
import { WalError } from '../errors.js';
import type { JetStreamConnection } from './connect.js';
import { toReplicationError } from './errors.js';
import { fromNatsHeaders, type StoredMessage } from './message.js';
import { checkReadStreamOptions, type ReadStreamOptions } from './options.js';

/**
 * How long one pull request waits on the server. While it waits, the server
 * sends a heartbeat every half of it (2.5 s), which is how a waiting reader
 * knows its consumer is alive. The client's default is 30 s.
 */
const PULL_EXPIRES_MS = 5_000;

/**
 * Pull requests ask for a count of messages, not bytes. With a byte budget
 * the server ends a request whose budget left is smaller than the next
 * message (409 "message size exceeds maxbytes"), which is routine, and the
 * 3.4 client, when the reader has taken everything it had buffered, then
 * waits for two missed heartbeats before it asks again: a follower at 5,000
 * commits/s stopped for 5–7 s at a time (bench S3). Counting messages has no
 * such end. The bytes stay bounded: each message is at most the server's
 * max_payload, so `maxBytesInFlight / max_payload` messages (at least one)
 * are asked for at a time.
 */
function messagesInFlight(maxBytesInFlight: number, maxPayload: number): number {
  return Math.max(1, Math.floor(maxBytesInFlight / Math.max(1, maxPayload)));
}

/**
 * A reader waiting this long (four heartbeats) with neither a message nor a
 * heartbeat has lost its consumer. The client's ordered consumer does not
 * always get over that: when the server holding its consumer is killed, it
 * can wait for the consumer's info forever (seen with 2.9.10 and the 3.4
 * clients), so the read fails instead and says where to go on from.
 */
const STALL_MS = 10_000;

/** Notifications that come from the server (or the client's recovery), so the consumer is alive. */
const ALIVE: ReadonlySet<ConsumerNotification['type']> = new Set(['heartbeat', 'discard', 'ordered_consumer_recreated']);

/**
 * The stream's messages in sequence order from `fromSeq`, then new ones as
 * they are stored, until `signal` aborts (the iteration then just ends).
 *
 * It reads through an ordered consumer: an ephemeral consumer that the
 * client recreates at the next sequence when a delivery goes missing, so no
 * message is skipped or repeated. Pull requests ask for as many messages as
 * `maxBytesInFlight` holds at the server's max_payload each (messagesInFlight),
 * and the client sends the next one only as the iterator is read, so a slow
 * reader holds no more than that.
 *
 * Fails with WAL_REPLICATION, after yielding every message before the
 * failure, when: a message is larger than `maxBytesInFlight`; the read waits
 * STALL_MS without a message or a heartbeat (its consumer's server is gone:
 * read again from the sequence after the last one yielded); or it stops
 * without an abort (the connection closed).
 */
export async function* readStream(connection: JetStreamConnection, options: ReadStreamOptions): AsyncGenerator<StoredMessage> {
  const { stream, fromSeq, maxBytesInFlight, signal } = checkReadStreamOptions(options);
  const aborted = () => signal?.aborted === true;
  if (aborted()) return;
  let messages: ConsumerMessages;
  try {
    const consumer = await connection.js.consumers.get(stream, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: fromSeq,
    });
    messages = await consumer.consume({ max_messages: messagesInFlight(maxBytesInFlight, connection.maxPayload), expires: PULL_EXPIRES_MS });
  } catch (error) {
    throw toReplicationError(error, `read stream ${stream} from sequence ${fromSeq}`);
  }

  const stop = () => void messages.close();
  // An abort that came while the consumer was being set up has already fired,
  // so the listener added below would never hear it.
  if (aborted()) {
    stop();
    return;
  }

  let lastSeq = fromSeq - 1;
  let failure: WalError | undefined;
  const fail = (error: WalError) => {
    failure ??= error;
    stop();
  };
  // Armed only while the reader waits for the next message: a caller that is
  // slow to take it sends no pull request, so hears no heartbeat either.
  let stallTimer: NodeJS.Timeout | undefined;
  let waiting = false;
  const expectActivity = () => {
    clearTimeout(stallTimer);
    stallTimer = setTimeout(() => fail(stalled(stream, lastSeq)), STALL_MS);
  };
  signal?.addEventListener('abort', stop, { once: true });
  void watchNotifications(messages, () => {
    if (waiting) expectActivity();
  });

  const iterator = messages[Symbol.asyncIterator]();
  try {
    for (;;) {
      waiting = true;
      expectActivity();
      const next = await iterator.next();
      waiting = false;
      clearTimeout(stallTimer);
      if (next.done === true) break;
      const message = next.value;
      if (message.data.byteLength > maxBytesInFlight) throw oversized(stream, maxBytesInFlight);
      lastSeq = message.seq;
      yield {
        subject: message.subject,
        seq: message.seq,
        headers: fromNatsHeaders(message.headers),
        data: message.data,
        time: message.time,
      };
    }
  } catch (error) {
    throw toReplicationError(error, `read stream ${stream} after sequence ${lastSeq}`);
  } finally {
    clearTimeout(stallTimer);
    signal?.removeEventListener('abort', stop);
    // A consumer that the caller left early (break, throw) is stopped too.
    stop();
  }
  if (failure !== undefined) throw failure;
  if (!aborted()) {
    const why = connection.nc.isClosed() ? 'the connection closed' : 'the consumer stopped';
    throw new WalError('WAL_REPLICATION', `read stream ${stream} ended after sequence ${lastSeq} without an abort: ${why}`);
  }
}

/** Follows the consumer's notifications for signs of life. */
async function watchNotifications(messages: ConsumerMessages, alive: () => void): Promise<void> {
  for await (const notification of messages.status()) {
    if (ALIVE.has(notification.type)) alive();
  }
}

function oversized(stream: string, maxBytesInFlight: number): WalError {
  return new WalError(
    'WAL_REPLICATION',
    `read stream ${stream}: the next message is larger than maxBytesInFlight (${maxBytesInFlight} bytes); ` +
      "read with at least the stream's max_msg_size",
  );
}

function stalled(stream: string, lastSeq: number): WalError {
  return new WalError(
    'WAL_REPLICATION',
    `read stream ${stream} stalled after sequence ${lastSeq}: no message or heartbeat for ${STALL_MS} ms ` +
      `(the server holding its consumer may be gone); read again from sequence ${lastSeq + 1}`,
  );
}
