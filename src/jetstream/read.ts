import { DeliverPolicy, type ConsumerMessages } from '@nats-io/jetstream';
import { WalError } from '../errors.js';
import type { JetStreamConnection } from './connect.js';
import { toReplicationError } from './errors.js';
import { fromNatsHeaders, type StoredMessage } from './message.js';
import { checkReadStreamOptions, type ReadStreamOptions } from './options.js';

/**
 * How long one pull request waits on the server. The client expects a
 * heartbeat every half of it and recreates the ordered consumer after two
 * missed, so a consumer lost with its server is replaced after about this
 * long; the client's default (30 s) would stall a reader that long.
 */
const PULL_EXPIRES_MS = 5_000;

/**
 * The stream's messages in sequence order from `fromSeq`, then new ones as
 * they are stored, until `signal` aborts (the iteration then just ends).
 *
 * It reads through an ordered consumer: an ephemeral consumer the client
 * recreates at the next sequence when a delivery goes missing or its server
 * goes away, so no message is skipped or repeated. Pull requests ask for at
 * most `maxBytesInFlight` bytes, and the client sends the next one only as
 * the iterator is read, so a slow reader holds no more than that.
 *
 * Fails with WAL_REPLICATION when a message is larger than
 * `maxBytesInFlight`, or when the read stops without an abort (the
 * connection closed).
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
    messages = await consumer.consume({ max_bytes: maxBytesInFlight, expires: PULL_EXPIRES_MS });
  } catch (error) {
    throw toReplicationError(error, `read stream ${stream} from sequence ${fromSeq}`);
  }

  let failure: WalError | undefined;
  const stop = () => void messages.close();
  signal?.addEventListener('abort', stop, { once: true });
  void watchForOversizedMessages(messages, maxBytesInFlight, stream, (error) => {
    failure = error;
    stop();
  });
  let lastSeq = fromSeq - 1;
  try {
    for await (const message of messages) {
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

/** The server does not split a message over pull requests: one larger than a request stalls the read, so fail it instead. */
async function watchForOversizedMessages(
  messages: ConsumerMessages,
  maxBytesInFlight: number,
  stream: string,
  fail: (error: WalError) => void,
): Promise<void> {
  for await (const status of messages.status()) {
    if (status.type === 'exceeded_limits' && /message size exceeds maxbytes/i.test(status.description)) {
      fail(
        new WalError(
          'WAL_REPLICATION',
          `read stream ${stream}: the next message is larger than maxBytesInFlight (${maxBytesInFlight} bytes); ` +
            'read with at least the stream\'s max_msg_size plus its headers and subject',
        ),
      );
      return;
    }
  }
}
