import { z } from 'zod';
import { invalidOptions } from '../options.js';

/*
 * The options of the JetStream access layer, checked with zod like Wal.open's
 * (a bad or unknown one throws WAL_INVALID_OPTIONS naming it). Every default
 * of the layer lives here; what is not set here is the NATS client's default.
 */

/** Replicas of a stream that `ensureStream` creates: survives the loss of one node of three. */
export const DEFAULT_REPLICAS = 3;

const positiveInt = z.number().int().positive();

const connectSchema = z.strictObject({
  servers: z.array(z.string().min(1)).min(1),
  /** Shown by the server's monitoring for this connection. */
  name: z.string().min(1).optional(),
  reconnect: z
    .strictObject({
      /** -1: forever. Client default 10. */
      maxAttempts: z.number().int().min(-1).optional(),
      /** Between attempts on one server. Client default 2000. */
      waitMs: z.number().int().min(0).optional(),
    })
    .optional(),
  /** How long a JetStream API call or a publish waits for its answer. Client default 5000. */
  timeoutMs: positiveInt.optional(),
  /** Refuse a server older than this (`requireServerVersion`). */
  minServerVersion: z.string().min(1).optional(),
});

export type ConnectOptions = z.input<typeof connectSchema>;

export function checkConnectOptions(options: ConnectOptions): ConnectOptions {
  return check(connectSchema, options);
}

const streamSpecSchema = z.strictObject({
  name: z.string().min(1),
  subjects: z.array(z.string().min(1)).min(1),
  replicas: z.number().int().min(1).max(5).optional(),
  /** The window in which a repeated `msgID` is dropped as a duplicate. */
  duplicateWindowMs: positiveInt,
  /** The largest message the stream stores (data plus headers). */
  maxMsgSize: positiveInt,
  /**
   * Let every replica answer direct gets. Faster, but a follower may answer
   * from behind the leader, so `lastMessageOnSubject` can then see an older
   * message. Default false: gets go to the stream leader.
   */
  allowDirect: z.boolean().optional(),
});

export type StreamSpec = z.input<typeof streamSpecSchema>;
export type NormalizedStreamSpec = Required<StreamSpec>;

export function normalizeStreamSpec(spec: StreamSpec): NormalizedStreamSpec {
  const given = check(streamSpecSchema, spec);
  return { ...given, replicas: given.replicas ?? DEFAULT_REPLICAS, allowDirect: given.allowDirect ?? false };
}

const readSchema = z.strictObject({
  stream: z.string().min(1),
  /** The first stream sequence to read. */
  fromSeq: positiveInt,
  /**
   * Bytes requested from the server and not yet taken from the iterator. The
   * server counts a message as its data, headers, subject and reply subject
   * (about 100 bytes) and does not split one: a message larger than this
   * fails the read. Give at least four times the largest message: the client
   * asks again for the budget a read has freed once a quarter of it is free,
   * and a request smaller than the next message is only retried after missed
   * heartbeats (reads stalled 7.5 s each time, measured with 2.9.10).
   */
  maxBytesInFlight: positiveInt,
  /** Ends the iteration, without an error. */
  signal: z.instanceof(AbortSignal).optional(),
});

export type ReadStreamOptions = z.input<typeof readSchema>;

export function checkReadStreamOptions(options: ReadStreamOptions): ReadStreamOptions {
  return check(readSchema, options);
}

function check<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalidOptions(parsed.error.issues);
  return parsed.data;
}
