import { z } from 'zod';
import { describeValue } from '../describe-issues.js';
import { WalError } from '../errors.js';
import { jsIo } from '../io/js.js';
import { runAsync } from '../io/program.js';
import { readLogId } from '../log-id.js';
import { checkDirArgument, invalidOptions } from '../options.js';
import { defaultResumePoint, lastLsnOnDisk } from '../read/log-bounds.js';
import { readTransactions, transactionBatches } from '../readers.js';
import type { RetentionHold } from '../retention.js';
import { Wal } from '../wal.js';
import { connectJetStream, type JetStreamConnection } from './connect.js';
import { Shipper, type ShipperSource, type ShipperStatus } from './shipper.js';
import { ensureStream } from './stream.js';
import type { ResumePoint } from './wire.js';

/*
 * ship(wal) in the writer's process and shipDirectory(dir) for a process of
 * its own (`segwal ship`): the durable committed transactions of a log, into
 * a JetStream stream, exactly once (docs/REPLICATION.md). Every default of
 * shipping lives here.
 */

/** Room left for a message's headers under the server's max_payload. */
const HEADER_ALLOWANCE_BYTES = 1024;
/** How often the retention limit is checked while the log grows. */
const LIMIT_CHECK_MS = 100;
/** Commits held for the limit go on once the bytes behind fall below this share of it. */
const RESUME_BELOW = 0.75;

const shipSchema = z.strictObject({
  servers: z.array(z.string().min(1)).min(1),
  stream: z.string().min(1),
  /** Default `segwal.<logId>`. */
  subject: z.string().min(1).optional(),
  /** Replicas of a stream ship creates. Default 3. */
  replicas: z.number().int().min(1).max(5).optional(),
  /** Messages published and not yet acknowledged. Default 32. */
  window: z.number().int().min(1).max(1024).optional(),
  /** Largest message; default the server's max_payload. */
  maxMessageBytes: z.number().int().min(4096).optional(),
  publishTimeoutMs: z.number().int().positive().optional(),
  /** Failing this long, the shipper reports itself stalled (it goes on retrying). Default 30 s. */
  retryBudgetMs: z.number().int().positive().optional(),
  /** Refuse an older server. Default 2.9.0. */
  minServerVersion: z.string().min(1).optional(),
  /** The stream's duplicate window (a stream ship creates). Default 2 minutes. */
  duplicateWindowMs: z.number().int().positive().optional(),
  /** Bytes of log the stream has not acknowledged, at most (ship(wal) only). Default 256 MiB. */
  maxUnshippedBytes: z.number().int().positive().optional(),
  /** At the limit: hold new commits (backpressure), or detach the shipper and keep writing locally. Default 'hold'. */
  onLimit: z.enum(['hold', 'detach']).optional(),
  /** How long a held commit waits before WAL_BACKPRESSURE. Default 30 s. */
  holdTimeoutMs: z.number().int().positive().max(2 ** 31 - 1).optional(),
  /** Named in the server's monitoring. */
  name: z.string().min(1).optional(),
});

export type ShipOptions = z.input<typeof shipSchema>;

const DEFAULTS = {
  replicas: 3,
  window: 32,
  publishTimeoutMs: 5_000,
  retryBudgetMs: 30_000,
  minServerVersion: '2.9.0',
  duplicateWindowMs: 120_000,
  maxUnshippedBytes: 256 * 1024 * 1024,
  onLimit: 'hold' as 'hold' | 'detach',
  holdTimeoutMs: 30_000,
};

export interface ShipStatus extends ShipperStatus {
  /** The log's durable LSN (ship(wal)); shipping from a directory, the highest commit LSN read (each read is fdatasync'd). */
  durableLsn: number;
  /** Bytes of log held for the stream (ship(wal): the segments from the oldest unacknowledged transaction on). */
  bytesBehind: number | null;
  /** Whether new commits are held because the stream is too far behind. */
  holdingCommits: boolean;
}

/** A running shipper: its status, a way to wait for the stream to hold a commit, and close. */
export interface ShipperHandle {
  status(): ShipStatus;
  /** Resolves once the stream holds every transaction committed at or below `commitLsn` (synchronous replication on demand). */
  acknowledged(commitLsn: number): Promise<void>;
  /** Stops shipping (the Wal stays open) and closes the connection. */
  close(): Promise<void>;
  /** A failure shipping cannot retry (divergence, another log on the subject): it has stopped. With no listener, a process warning. */
  on(event: 'failure', listener: (error: WalError) => void): ShipperHandle;
}

/**
 * Ships the durable committed transactions of `wal` (an open log in this
 * process). Local retention follows the stream: truncation keeps every
 * segment holding a transaction the stream has not acknowledged, up to
 * `maxUnshippedBytes`, where `onLimit` says what happens.
 */
export async function ship<In, Out>(wal: Wal<In, Out>, options: ShipOptions): Promise<ShipperHandle> {
  if (!(wal instanceof Wal)) throw new WalError('WAL_INVALID_OPTIONS', `ship(wal, options): wal must be an open Wal (from Wal.open), not ${describeValue(wal)}`);
  const given = parseShipOptions(options);
  const logId = wal.logId;
  const start = (): ResumePoint => {
    const status = wal.status();
    return { fromLsn: status.lastCheckpointLsn + 1, scanFromLsn: Math.min(status.oldestLsn, status.lastCheckpointLsn + 1) };
  };
  const hold: RetentionHold = wal.retain(start().scanFromLsn);
  let releaseCommits: (() => void) | null = null;
  const source: ShipperSource = {
    read: (resume, signal) => transactionBatches(wal.readTransactions({ ...resume, signal, codec: 'bytes' })),
    start: async () => start(),
    endLsn: async () => wal.nextLsn - 1,
    acknowledged: (resume) => hold.advance(resume.scanFromLsn),
  };
  const running = await startShipping(given, logId, source, {
    durableLsn: () => wal.durableLsn,
    bytesBehind: () => hold.bytes,
    holdingCommits: () => releaseCommits !== null,
  }).catch((error: unknown) => {
    // A shipper that never started must not keep the log's segments for the life of the Wal.
    hold.release();
    throw error;
  });
  // The limit: checked before each new transaction (a hold then takes that one), and every
  // LIMIT_CHECK_MS as the stream acknowledges (the hold lifts) or while nobody commits.
  const checkLimit = () => {
    const behind = hold.bytes;
    if (behind > given.maxUnshippedBytes && releaseCommits === null && running.state() !== 'closed') {
      if (given.onLimit === 'detach') {
        running.detach(`the stream is ${behind} bytes behind, over the limit of ${given.maxUnshippedBytes}: detached, the log goes on locally`);
        hold.release();
        stopChecking();
        return;
      }
      releaseCommits = wal.holdCommits(
        `segwal/jetstream: stream ${given.stream} is ${behind} bytes behind, over the limit of ${given.maxUnshippedBytes}`,
        given.holdTimeoutMs,
      );
    } else if (releaseCommits !== null && behind < given.maxUnshippedBytes * RESUME_BELOW) {
      releaseCommits();
      releaseCommits = null;
    }
  };
  let removeCheck: () => void;
  try {
    removeCheck = wal.checkBeforeCommits(checkLimit);
  } catch (error) {
    // The Wal closed while connecting: a shipper left running would keep its connection, and the process, alive.
    await running.handle(async () => hold.release()).close();
    throw error;
  }
  // A throw from a timer would crash the process. A closed Wal ends the check: it refuses
  // holdCommits, and its close refused the held commits already.
  const timer = setInterval(() => {
    if (wal.status().closed) return stopChecking();
    try {
      checkLimit();
    } catch (error) {
      stopChecking();
      running.fail(new WalError('WAL_REPLICATION', `checking the limit of maxUnshippedBytes failed: ${error instanceof Error ? error.message : String(error)}; shipping stopped`, { cause: error }));
    }
  }, LIMIT_CHECK_MS);
  timer.unref();
  const stopChecking = () => {
    clearInterval(timer);
    removeCheck();
  };
  return running.handle(async () => {
    stopChecking();
    releaseCommits?.();
    hold.release();
  });
}

/**
 * Ships the log in `dir` from a process of its own (`segwal ship`): it reads
 * what is durable, fdatasyncing what it read before shipping it. It cannot
 * hold the writer's truncation: when the log no longer holds what the
 * stream lacks, shipping stops with WAL_REPLICATION_DIVERGED.
 */
export async function shipDirectory(dir: string, options: ShipOptions): Promise<ShipperHandle> {
  const root = checkDirArgument(dir, 'shipDirectory');
  const given = parseShipOptions(options);
  const logId = await runAsync(jsIo, readLogId(root));
  if (logId === null) {
    throw new WalError('WAL_REPLICATION', `the log in ${root} has no identity yet (${root}/.segwal.id): open it once with this version of segwal first`);
  }
  const source: ShipperSource = {
    read: (resume, signal) => transactionBatches(readTransactions(root, { ...resume, signal, follow: true, durableOnly: true })),
    start: () => runAsync(jsIo, defaultResumePoint(root, jsIo)),
    endLsn: () => runAsync(jsIo, lastLsnOnDisk(root, jsIo)),
    acknowledged: () => undefined,
  };
  const running = await startShipping(given, logId, source, {
    // What the shipper read is durable: it fdatasyncs what it reads.
    durableLsn: () => running.sourceCommitLsn(),
    bytesBehind: () => null,
    holdingCommits: () => false,
  });
  return running.handle(async () => undefined);
}

type ParsedShipOptions = z.output<typeof shipSchema> & typeof DEFAULTS;

function parseShipOptions(options: ShipOptions): ParsedShipOptions {
  const parsed = shipSchema.safeParse(options, { reportInput: true });
  if (!parsed.success) throw invalidOptions(parsed.error.issues, 'invalid ship() options');
  return { ...DEFAULTS, ...stripUndefined(parsed.data) } as ParsedShipOptions;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as Partial<T>;
}

interface Observed {
  durableLsn(): number;
  bytesBehind(): number | null;
  holdingCommits(): boolean;
}

/** Connects, makes sure the stream is there, and starts the shipper. */
async function startShipping(given: ParsedShipOptions, logId: string, source: ShipperSource, observed: Observed) {
  const connection: JetStreamConnection = await connectJetStream({
    servers: given.servers,
    name: given.name ?? `segwal shipper ${logId}`,
    reconnect: { maxAttempts: -1, waitMs: 250 },
    timeoutMs: given.publishTimeoutMs,
    minServerVersion: given.minServerVersion,
  });
  const subject = given.subject ?? `segwal.${logId}`;
  let report;
  try {
    const maxPayload = Math.min(given.maxMessageBytes ?? connection.maxPayload, connection.maxPayload);
    report = await ensureStream(connection, {
      name: given.stream,
      subjects: [subject],
      replicas: given.replicas,
      duplicateWindowMs: given.duplicateWindowMs,
      maxMsgSize: maxPayload,
    });
  } catch (error) {
    await connection.close();
    throw error;
  }
  const maxBody = Math.min(given.maxMessageBytes ?? connection.maxPayload, connection.maxPayload, report.config.max_msg_size) - HEADER_ALLOWANCE_BYTES;
  const listeners = new Set<(error: WalError) => void>();
  /** Why ship() itself stopped the shipper (detached it, or a failure beside its cycles). */
  let stoppedBecause: string | null = null;
  const shipper = new Shipper(
    {
      connection,
      stream: report.config,
      subject,
      logId,
      maxBody,
      window: given.window,
      publishTimeoutMs: given.publishTimeoutMs,
      retryBudgetMs: given.retryBudgetMs,
    },
    source,
    (error) => announce(listeners, error),
  );
  return {
    state: () => shipper.status().state,
    sourceCommitLsn: () => shipper.status().sourceCommitLsn,
    detach(reason: string) {
      stoppedBecause = reason;
      process.emitWarning(`segwal/jetstream: ${reason}`, { code: 'SEGWAL_SHIPPER_DETACHED' });
      void shipper.close('detached', reason).then(() => connection.close());
    },
    /** Stops shipping for a failure beside the shipper's cycles (the limit's check), heard like one of theirs. */
    fail(error: WalError) {
      stoppedBecause = error.message;
      void shipper.close('closed', error.message).then(() => connection.close());
      announce(listeners, error);
    },
    handle(release: () => Promise<void>): ShipperHandle {
      let closing: Promise<void> | null = null;
      const handle: ShipperHandle = {
        status: () => ({
          ...shipper.status(),
          // Stopped by ship() itself, the reason is its own, not the last failure of the cycles before.
          lastError: stoppedBecause ?? shipper.status().lastError,
          durableLsn: observed.durableLsn(),
          bytesBehind: observed.bytesBehind(),
          holdingCommits: observed.holdingCommits(),
        }),
        acknowledged: (commitLsn) => shipper.acknowledged(commitLsn),
        close: () => {
          closing ??= (async () => {
            await shipper.close();
            await release();
            await connection.close();
          })();
          return closing;
        },
        on: (_event, listener) => {
          listeners.add(listener);
          return handle;
        },
      };
      return handle;
    },
  };
}

function announce(listeners: ReadonlySet<(error: WalError) => void>, error: WalError): void {
  queueMicrotask(() => {
    if (listeners.size === 0) {
      process.emitWarning(`segwal/jetstream: shipping stopped: ${error.message}`, { code: 'SEGWAL_SHIPPER_FAILED' });
      return;
    }
    for (const listener of listeners) listener(error);
  });
}
