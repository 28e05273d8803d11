import { z } from 'zod';
import { codecs } from './codec.js';
import { MAX_LSN } from './format/constants.js';
import { recordEvents } from './format/frame.js';
import { bestAvailableIo, resolveIo } from './io/resolve.js';
import type { WalIo } from './io/types.js';
import { runAsync } from './io/program.js';
import { readLogId } from './log-id.js';
import { checkDirArgument, codecOptionSchema, fenceSchema, ioOptionSchema, parseOptions, resolveCodec } from './options.js';
import { DirectoryChanges } from './read/directory-changes.js';
import { streamLog, type CommitRun, type ResumePoint, type StreamConfig } from './read/log-stream.js';
import { decodeEvents, recoveryReport, replayLog } from './read/replay-log.js';
import type { Codec, CodecNameFor, CodecOption, EventOut, Recovery, ReplayHandler, WalRecord } from './types.js';

/*
 * Read-only access for tools, followers and shippers: no lock is taken and no
 * file is changed, so all of it works on a log a live Wal is writing. Every
 * reader reads through the one validator and assembler open uses
 * (src/read/), and through the io seam: the native backend when the addon
 * loads (reads are node:fs in both; its CRC-32 runs at ~16 GB/s here over
 * 1 MiB, zlib's at ~2.3), else `io: 'js'`, so no reader needs the addon;
 * tests pass ios that observe or interfere.
 * A torn tail is reported (replayDir) or simply not read past, never cut.
 */

/** What every reader reads through. Default: 'native' when the addon loads, else 'js' (readers need no addon). */
interface ReaderIoOption {
  io?: 'native' | 'js' | WalIo;
}

export interface ReplayDirOptions<Out = Buffer> extends ReaderIoOption {
  /** Transactions committed at or below it are skipped. Default `'marker'`, as for `Wal.open`. */
  checkpointLsn?: number | 'marker';
  codec?: Codec<unknown, Out> | CodecNameFor<unknown, Out>;
  onReplay?: ReplayHandler<Out>;
}

/** `ReplayDirOptions` for the codec option `C`, which types the events (as `WalOptionsFor` does). */
export type ReplayDirOptionsFor<C extends CodecOption> = Omit<ReplayDirOptions<EventOut<C>>, 'codec'> & { codec?: C };

const replayDirOptions = z.strictObject({
  checkpointLsn: fenceSchema.optional(),
  codec: codecOptionSchema.optional(),
  onReplay: z.custom<ReplayHandler<unknown>>((value) => typeof value === 'function', 'expected a function').optional(),
  io: ioOptionSchema.optional(),
});

/** Replays a log directory without opening it for writing. */
export function replayDir<C extends CodecOption = 'bytes'>(
  dir: string,
  options?: ReplayDirOptionsFor<C>,
): Promise<{ events: EventOut<C>[]; recovery: Recovery }>;
export async function replayDir<Out>(
  dir: string,
  options: ReplayDirOptions<Out> = {},
): Promise<{ events: Out[]; recovery: Recovery }> {
  const root = checkDirArgument(dir, 'replayDir');
  const given = parseOptions(replayDirOptions, options, 'replayDir');
  const codec = resolveCodec(given.codec) as Codec<unknown, Out>;
  const io = given.io === undefined ? bestAvailableIo() : resolveIo(given.io);
  const log = await runAsync(
    io,
    replayLog(root, {
      fence: given.checkpointLsn ?? 'marker',
      checksums: io,
      codec,
      onReplay: (given.onReplay as ReplayHandler<Out> | undefined) ?? null,
    }),
  );
  const repairs: string[] = [];
  if (log.refs.length > 0 && log.last === null) repairs.push('open would replace the last segment (unfinished header)');
  else if (log.last?.sealed === true) repairs.push('open would create a new active segment (the last one is sealed)');
  const logId = await runAsync(io, readLogId(root));
  return { events: log.events, recovery: recoveryReport(log, { logId, repairs, tornTail: log.last?.tornTail ?? null }) };
}

/** How often a follower looks for new records by default, in ms (docs/CLI.md). */
export const FOLLOW_POLL_MS = 50;

const followOptions = {
  follow: z.boolean().optional(),
  signal: z.instanceof(AbortSignal).optional(),
  pollMs: z.number().int().min(1).max(60_000).optional(),
  io: ioOptionSchema.optional(),
};
const lsnOption = z.number().int().min(1).max(MAX_LSN).optional();

export interface ReadWalOptions<Out = Buffer> extends ReaderIoOption {
  /** Yield records with an LSN at or above this (a Commit record: whose commit LSN is). Default 1. */
  fromLsn?: number;
  /** After the records on disk, wait for new ones as a live Wal appends them, until `signal` aborts. */
  follow?: boolean;
  /** Ends a `follow` iteration (normally, without an error). */
  signal?: AbortSignal;
  /** How often `follow` looks for new records, in ms. Default 50. */
  pollMs?: number;
  /** Decodes the events of Mutation, MutationBatch and Commit records into `events` (no hand-parsing of the batch format). */
  codec?: Codec<unknown, Out> | CodecNameFor<unknown, Out>;
}

/** `ReadWalOptions` for the codec option `C`, which types the events. */
export type ReadWalOptionsFor<C extends CodecOption> = Omit<ReadWalOptions<EventOut<C>>, 'codec'> & { codec?: C };

/** A record as readWal yields it; `events` when a codec was given and the record holds events. */
export type ReadWalRecord<Out = Buffer> = WalRecord & { events?: Out[] };

const readWalOptions = z.strictObject({ fromLsn: lsnOption, codec: codecOptionSchema.optional(), ...followOptions });

/**
 * Every record of the log in order, as stored, after the same checks open
 * makes (transaction structure included); a record that fails them ends the
 * iteration with a WalError, after the records before it. With `follow`, it
 * then yields records as a live Wal appends them, across rotation and
 * truncation, until `signal` aborts (docs/CLI.md).
 */
export function readWal<C extends CodecOption = 'bytes'>(dir: string, options?: ReadWalOptionsFor<C>): AsyncGenerator<ReadWalRecord<EventOut<C>>>;
export async function* readWal<Out>(dir: string, options: ReadWalOptions<Out> = {}): AsyncGenerator<ReadWalRecord<Out>> {
  const root = checkDirArgument(dir, 'readWal');
  const given = parseOptions(readWalOptions, options, 'readWal');
  const fromLsn = given.fromLsn ?? 1;
  const codec = given.codec === undefined ? null : (resolveCodec(given.codec) as Codec<unknown, Out>);
  const config = streamConfig(root, { ...given, recordsOnly: true, scanFromLsn: fromLsn === 1 ? null : { lsn: fromLsn, ifTruncated: 'read what is left' } });
  for await (const batch of streamLog(config)) {
    for (const scanned of batch.records) {
      if (scanned.lsn < fromLsn) continue;
      const record: ReadWalRecord<Out> = {
        kind: scanned.kind,
        lsn: scanned.lsn,
        txBeginLsn: scanned.txBeginLsn,
        payload: scanned.payload,
        segmentId: scanned.segmentId,
        offset: scanned.offset,
      };
      if (codec !== null) {
        const raw = recordEvents(record);
        if (raw !== null) record.events = raw.map((event) => decodeOne(codec, event, record.lsn));
      }
      yield record;
    }
  }
}

function decodeOne<Out>(codec: Codec<unknown, Out>, bytes: Buffer, lsn: number): Out {
  return decodeEvents({ events: [bytes], eventLsns: lsn }, codec)[0] as Out;
}

export interface ReadTransactionsOptions<Out = Buffer> extends ReaderIoOption {
  /**
   * Yield the transactions committed at or after this LSN. Default: those
   * `Wal.open` replays by default (above the last Checkpoint marker's fence).
   */
  fromLsn?: number;
  /**
   * Reading may start at this LSN: pass the `resume.scanFromLsn` of the last
   * transaction you processed (with its `resume.fromLsn`), so a restart does
   * not read the whole log. Default: the start of the log.
   */
  scanFromLsn?: number;
  follow?: boolean;
  signal?: AbortSignal;
  pollMs?: number;
  /** How events are decoded. Default: raw bytes. */
  codec?: Codec<unknown, Out> | CodecNameFor<unknown, Out>;
  /**
   * Yield only what is durable: every read of a segment that is not sealed is
   * fdatasync'd before its transactions are yielded (an fsync per read; cheap
   * when the writer already fsync'd). For followers that ship elsewhere.
   */
  durableOnly?: boolean;
}

/** `ReadTransactionsOptions` for the codec option `C`, which types the events. */
export type ReadTransactionsOptionsFor<C extends CodecOption> = Omit<ReadTransactionsOptions<EventOut<C>>, 'codec'> & { codec?: C };

/** A committed transaction as the readers yield it. */
export interface CommittedTransaction<Out = Buffer> {
  beginLsn: number;
  commitLsn: number;
  events: Out[];
  /** Pass to `readTransactions` (`{ ...resume }`) to see every transaction committed after this one. */
  resume: ResumePoint;
}

const readTransactionsOptions = z.strictObject({
  fromLsn: lsnOption,
  scanFromLsn: lsnOption,
  codec: codecOptionSchema.optional(),
  durableOnly: z.boolean().optional(),
  ...followOptions,
});

/**
 * The committed transactions of a log, in commit order (aborted and
 * unfinished ones never appear), each with the point to resume from. With
 * `follow`, it goes on as a live Wal commits, across rotation and truncation,
 * until `signal` aborts. Asked for LSNs a truncation already removed, it
 * throws WAL_LSN_TRUNCATED rather than skip them.
 */
export function readTransactions<C extends CodecOption = 'bytes'>(
  dir: string,
  options?: ReadTransactionsOptionsFor<C>,
): AsyncGenerator<CommittedTransaction<EventOut<C>>>;
export function readTransactions<Out>(dir: string, options: ReadTransactionsOptions<Out> = {}): AsyncGenerator<CommittedTransaction<Out>> {
  try {
    const root = checkDirArgument(dir, 'readTransactions');
    const given = parseOptions(readTransactionsOptions, options, 'readTransactions');
    const codec = resolveCodec(given.codec) as Codec<unknown, Out>;
    const scanFromLsn = given.scanFromLsn ?? null;
    const config = streamConfig(root, {
      ...given,
      recordsOnly: false,
      scanFromLsn: scanFromLsn === null ? null : { lsn: scanFromLsn, ifTruncated: 'refuse' },
      syncReads: given.durableOnly === true,
    });
    return transactionsOf(config, codec);
  } catch (error) {
    // Bad arguments are refused by the first next(), as an async generator function would.
    const refused = async function* (): AsyncGenerator<never> {
      throw error;
    };
    return readerOf(refused, refused);
  }
}

/**
 * What the transaction readers return: an async generator of transactions,
 * and the same transactions a batch at a time under TRANSACTION_BATCHES (one
 * promise per batch read, not per transaction; consecutive one-frame
 * transactions as runs of their frames, another one-frame transaction's
 * events left in their batch), which segwal/jetstream's shipper reads
 * through `transactionBatches`. Not exported from the package: one public
 * way to read.
 */
const TRANSACTION_BATCHES = Symbol('segwal.transactionBatches');
type TransactionReader<Out> = AsyncGenerator<CommittedTransaction<Out>> & {
  [TRANSACTION_BATCHES](): AsyncGenerator<Shippable[]>;
};

/**
 * A transaction as the shipper reads it: the events of a transaction in one
 * frame still in the batch format (`batch`; `events` is then empty), which
 * is how they travel (docs/REPLICATION.md, "Message layout"), so they are
 * copied as one block rather than split and put back together.
 */
export interface ShippableTransaction extends CommittedTransaction<Buffer> {
  batch: Buffer | null;
}

/** What the shipper reads: a transaction, or consecutive one-frame transactions as their frames (CommitRun). */
export type Shippable = ShippableTransaction | CommitRun;

/**
 * The transactions of a reader from readTransactions or wal.readTransactions
 * (bytes codec), a batch at a time, as the shipper reads them; read it this
 * way or one by one, not both. A batch's events, batches and runs' frames
 * are views into memory the reader reuses: valid until the next batch is
 * asked for (the shipper copies each into its message as it takes it).
 */
export function transactionBatches(reader: AsyncGenerator<CommittedTransaction<Buffer>>): AsyncGenerator<Shippable[]> {
  const batches = (reader as Partial<TransactionReader<Buffer>>)[TRANSACTION_BATCHES];
  if (batches === undefined) throw new TypeError('transactionBatches() takes what readTransactions() or wal.readTransactions() returned');
  return batches();
}

/** Decodes the committed transactions of a stream. */
export function transactionsOf<Out>(config: StreamConfig, codec: Codec<unknown, Out>): TransactionReader<Out> {
  return readerOf(
    async function* decoded(): AsyncGenerator<CommittedTransaction<Out>[]> {
      for await (const batch of streamLog(config)) {
        if (batch.transactions.length === 0) continue;
        yield batch.transactions.map((tx) => ({ beginLsn: tx.beginLsn, commitLsn: tx.commitLsn, events: decodeEvents(tx, codec), resume: tx.resume }));
      }
    },
    async function* shippable(): AsyncGenerator<Shippable[]> {
      if (codec !== (codecs.bytes as Codec<unknown, unknown>)) throw new TypeError('transactionBatches() reads raw bytes: open the reader with the bytes codec');
      for await (const batch of streamLog({ ...config, keepBatches: true, reuseWindows: true, commitRuns: true })) {
        if (batch.transactions.length === 0) continue;
        yield batch.transactions;
      }
    },
  );
}

/** A TransactionReader: the decoded transactions one by one, and the shipper's batches; only one of the two is to be read. */
function readerOf<Out>(
  decoded: () => AsyncGenerator<CommittedTransaction<Out>[]>,
  shippable: () => AsyncGenerator<Shippable[]>,
): TransactionReader<Out> {
  async function* oneByOne(): AsyncGenerator<CommittedTransaction<Out>> {
    for await (const batch of decoded()) yield* batch;
  }
  return Object.assign(oneByOne(), { [TRANSACTION_BATCHES]: shippable });
}

/** A read-only stream over node:fs, polling when followed. */
function streamConfig(
  root: string,
  given: {
    fromLsn?: number | undefined;
    scanFromLsn: StreamConfig['scanFrom'];
    follow?: boolean | undefined;
    signal?: AbortSignal | undefined;
    pollMs?: number | undefined;
    recordsOnly: boolean;
    syncReads?: boolean;
    io?: 'native' | 'js' | WalIo | undefined;
  },
): StreamConfig {
  const pollMs = given.pollMs ?? FOLLOW_POLL_MS;
  const io = given.io === undefined ? bestAvailableIo() : resolveIo(given.io);
  // Polls start every pollMs, however long the reads between them took: a
  // commit shows up at most one interval (and its own read) after it lands,
  // and sooner when the directory's change notification wakes the follower.
  // The watch starts with the first wait: a reader never iterated holds none.
  let changes: DirectoryChanges | null = null;
  let pollStartedAt = performance.now();
  const waitForMore = async (signal: AbortSignal | undefined) => {
    changes ??= new DirectoryChanges(root);
    await changes.wait(Math.max(0, pollStartedAt + pollMs - performance.now()), signal);
    pollStartedAt = performance.now();
  };
  return {
    io,
    dir: root,
    fromLsn: given.fromLsn ?? 'marker',
    scanFrom: given.scanFromLsn,
    recordsOnly: given.recordsOnly,
    follow: given.follow === true,
    signal: given.signal,
    waitForMore,
    stopWaiting: () => changes?.close(),
    syncReads: given.syncReads === true,
    limit: () => Number.POSITIVE_INFINITY,
    ended: () => false,
    recent: null,
  };
}
