import type { JetStreamPublishOptions } from '@nats-io/jetstream';
import { errors as natsErrors } from '@nats-io/transport-node';
import { WalError } from '../errors.js';
import type { JetStreamConnection } from './connect.js';
import { toReplicationError } from './errors.js';
import { toNatsHeaders, type MessageHeaders } from './message.js';

/**
 * What the stream must hold before this message, checked by the server
 * against the whole stream: the `msgID` of its last message, or its last
 * sequence (0: the stream is empty). A mismatch is refused with a
 * ReplicationConflictError and nothing is stored.
 */
export type PublishExpectation = { lastMsgID: string; lastSequence?: never } | { lastSequence: number; lastMsgID?: never };

export interface PublishOptions {
  headers?: MessageHeaders;
  /** Sent as `Nats-Msg-Id`: the stream drops a repeat within its duplicate window and acks it as a duplicate. */
  msgID?: string;
  expect?: PublishExpectation;
  /** How long to wait for the stream's ack; default: the connection's `timeoutMs`. */
  timeoutMs?: number;
}

/** The stream's acknowledgement: the message is stored on a quorum of its replicas. */
export interface PublishAck {
  stream: string;
  seq: number;
  /** The stream already held a message with this `msgID` (within its window); `seq` is that message's. */
  duplicate: boolean;
}

/**
 * Publishes one message to the stream that takes `subject` and waits for its
 * ack. Fails with ReplicationConflictError (WAL_REPLICATION_CONFLICT) when
 * `expect` does not hold, and with WAL_REPLICATION otherwise, for instance
 * on a timeout while the stream elects a leader: the message may then be
 * stored or not, and a retry with the same `msgID` inside the duplicate
 * window tells which without storing it twice.
 */
export async function publishMessage(
  connection: JetStreamConnection,
  subject: string,
  data: Uint8Array,
  options: PublishOptions = {},
): Promise<PublishAck> {
  const { headers, msgID, expect, timeoutMs } = options;
  // Checked by hand rather than with zod: this runs for every message shipped.
  if (expect?.lastMsgID !== undefined && expect.lastSequence !== undefined) {
    throw new WalError('WAL_INVALID_OPTIONS', 'invalid argument `expect`: give lastMsgID or lastSequence, not both');
  }
  const natsOptions: Partial<JetStreamPublishOptions> = {};
  if (headers !== undefined) natsOptions.headers = toNatsHeaders(headers);
  if (msgID !== undefined) natsOptions.msgID = msgID;
  if (expect !== undefined) natsOptions.expect = expect;
  if (timeoutMs !== undefined) natsOptions.timeout = timeoutMs;
  try {
    const ack = await connection.js.publish(subject, data, natsOptions);
    return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
  } catch (error) {
    if (error instanceof natsErrors.InvalidArgumentError && error.message.includes('max_payload')) {
      throw new WalError(
        'WAL_REPLICATION',
        `publish to ${subject} refused: ${data.byteLength} bytes of data plus headers are over the server's ` +
          `max_payload of ${connection.maxPayload} bytes; nothing was sent`,
        { cause: error },
      );
    }
    throw toReplicationError(error, `publish to ${subject}`);
  }
}
