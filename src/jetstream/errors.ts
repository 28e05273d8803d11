import { errors as natsErrors } from '@nats-io/transport-node';
import { JetStreamApiError } from '@nats-io/jetstream';
import { WalError } from '../errors.js';

/** The stream expectation a publish failed: its last message id, or its last sequence. */
export type StreamExpectation = 'lastMsgID' | 'lastSequence';

/** JetStream API error codes of a failed publish expectation (nats-server's errors.json). */
const EXPECTATION_API_CODES: ReadonlyMap<number, StreamExpectation> = new Map([
  [10070, 'lastMsgID'], // JSStreamWrongLastMsgIDErrF: "wrong last msg ID: {id}"
  [10071, 'lastSequence'], // JSStreamWrongLastSequenceErrF: "wrong last sequence: {seq}"
]);

/**
 * The stream refused a publish because its last message id or last sequence
 * is not the one the publisher named in `expect`: someone else appended, or
 * the publisher's view of the stream is stale. Nothing was stored. The
 * server's words (`message`) name the stream's actual last id or sequence.
 */
export class ReplicationConflictError extends WalError {
  /** Which expectation failed. */
  readonly expectation: StreamExpectation;
  /** The JetStream API error code: 10070 (last msg id) or 10071 (last sequence). */
  readonly apiCode: number;

  constructor(expectation: StreamExpectation, apiCode: number, message: string, cause: unknown) {
    super('WAL_REPLICATION_CONFLICT', message, { cause });
    this.expectation = expectation;
    this.apiCode = apiCode;
  }
}

/** A `WalError` as it is; anything else that ends shipping or following as `WAL_REPLICATION`, in its own words. */
export function asReplicationError(error: unknown): WalError {
  return error instanceof WalError ? error : new WalError('WAL_REPLICATION', String(error), { cause: error });
}

/**
 * Wraps an error of the NATS clients as `WAL_REPLICATION`, naming the action
 * and, for an error the JetStream API returned, its code; a failed publish
 * expectation becomes a `ReplicationConflictError`. A `WalError` passes through.
 */
export function toReplicationError(error: unknown, action: string): WalError {
  if (error instanceof WalError) return error;
  if (error instanceof JetStreamApiError) {
    const description = error.apiError().description;
    const expectation = EXPECTATION_API_CODES.get(error.code);
    if (expectation !== undefined) {
      return new ReplicationConflictError(expectation, error.code, `${action} refused: ${description}`, error);
    }
    return new WalError('WAL_REPLICATION', `${action} failed: JetStream API error ${error.code}: ${description}`, {
      cause: error,
    });
  }
  return new WalError('WAL_REPLICATION', `${action} failed: ${reasonOf(error)}`, { cause: error });
}

/**
 * The client's words, except where they mislead: a request nobody answered
 * comes back from a publish as "jetstream is not enabled", which during a
 * leader election is not the case.
 */
function reasonOf(error: unknown): string {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e instanceof natsErrors.RequestError && e.isNoResponders()) {
      return 'no responders: nothing serves this subject now (no stream takes it, or its stream has no leader while one is elected)';
    }
  }
  if (error instanceof natsErrors.TimeoutError) {
    return 'no answer within the timeout (the server or the stream leader may be gone; electing a new leader takes seconds)';
  }
  return error instanceof Error ? error.message : String(error);
}
