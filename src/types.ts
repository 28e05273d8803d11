import type { RecordKind } from './format/constants.js';
import type { WalIo } from './io/types.js';

/** How events become bytes and back. `decode` gets the record's LSN for error messages. */
export interface Codec<In, Out = In> {
  readonly name: string;
  encode(event: In): Uint8Array;
  decode(bytes: Buffer, lsn: number): Out;
}

/** The built-in codecs by the name the `codec` option accepts for each (`'json'` is `codecs.json()`). */
export interface CodecsByName {
  bytes: Codec<Uint8Array, Buffer>;
  utf8: Codec<string>;
  json: Codec<unknown>;
}

export type CodecName = keyof CodecsByName;

/** What a `codec` option accepts: a `Codec`, or the name of a built-in one. */
export type CodecOption = CodecName | Codec<never, unknown>;

type CodecOf<C extends CodecOption> = C extends CodecName ? CodecsByName[C] : C;

// `C extends unknown` spreads a union of options (`'utf8' | 'json'`) over its members.

/** The events a codec option takes: what `commit` and `Tx.append` accept. */
export type EventIn<C extends CodecOption> = C extends unknown ? (CodecOf<C> extends Codec<infer In, unknown> ? In : never) : never;

/** The events a codec option gives back: what replay yields. */
export type EventOut<C extends CodecOption> = C extends unknown ? (CodecOf<C> extends Codec<never, infer Out> ? Out : never) : never;

/** The built-in codec names that are a `Codec<In, Out>` giving exactly `Out` (never when none is). */
export type CodecNameFor<In, Out> = {
  [N in CodecName]: CodecsByName[N] extends Codec<In, Out> ? ([Out] extends [EventOut<N>] ? N : never) : never;
}[CodecName];

export type SyncMode = 'per-commit' | 'group' | 'none';

export type TailDamagePolicy = 'cut' | 'refuse';

export type SyncOption = SyncMode | { mode: 'group'; intervalMs?: number };

/** The LSNs of one committed transaction. */
export interface TxLsns {
  beginLsn: number;
  commitLsn: number;
}

export type ReplayHandler<Out> = (events: Out[], tx: TxLsns) => void | Promise<void>;

export interface WalOptions<In = Uint8Array, Out = Buffer> {
  /** The log directory; created if missing. */
  dir: string;
  /** Durability mode (docs/DURABILITY.md). Default: group, every 50 ms. */
  sync?: SyncOption;
  /** A segment is sealed and a new one started once it holds this many bytes. Default 8 MiB. */
  segmentBytes?: number;
  /**
   * Replay fence: transactions committed at or below it are skipped. `'marker'`
   * (the default) takes the snapshot LSN of the log's last Checkpoint record,
   * 0 when it has none (docs/DURABILITY.md, "The checkpoint fence").
   */
  checkpointLsn?: number | 'marker';
  /**
   * What open does when valid frames follow damage in the last segment: `'cut'`
   * (default) cuts there, keeping the cut bytes in a quarantine file, `'refuse'`
   * throws WAL_MALFORMED and changes nothing.
   */
  tailDamage?: TailDamagePolicy;
  /** 'native' (the C++ addon, default), 'js' (node:fs only), or your own `WalIo`. */
  io?: 'native' | 'js' | WalIo;
  /** How events become bytes: a `Codec`, or the name of the built-in one with these event types. Default: raw bytes. */
  codec?: Codec<In, Out> | CodecNameFor<In, Out>;
  /** Preallocate each segment to `segmentBytes` so appends never grow the file. Default true. */
  preallocate?: boolean;
  /** Called once per committed transaction during recovery instead of collecting `events`. */
  onReplay?: ReplayHandler<Out>;
  /**
   * The identity a new log takes (32 lowercase hex digits), as a replica takes
   * its source's; an existing log with another identity is refused. Default:
   * a new log gets a random one.
   */
  logId?: string;
  /**
   * The log is a replica, written by `followStream` (segwal/jetstream) with
   * `appendReplicated`, at its source's LSNs: it takes no commits of its own.
   * Open a replica without it to promote it to a log of its own.
   */
  replica?: boolean;
  /**
   * Sync modes group and none: write a batch that nobody waits to see
   * fsync'd from the event loop, at the end of the tick that staged it,
   * instead of on the thread pool (fsyncs always run on the pool). Default
   * true; docs/DURABILITY.md, "Writes on the event loop", says when to turn
   * it off. Ignored in per-commit mode, where every commit waits for an fsync.
   */
  writeOnLoop?: boolean;
  /**
   * Keep the figures `wal.metrics()` returns (docs/OPERATIONS.md). Default
   * true: they cost a clock read and a few histogram records per write and per
   * fsync, nothing per commit (docs/BENCHMARKS.md, "Metrics"); false only to measure that cost.
   */
  metrics?: boolean;
}

/**
 * The options of `Wal.open` for the codec option `C` (a name or a `Codec`), so that the events
 * `commit` takes and replay gives follow from it: `{ codec: 'utf8' }` is a log of strings.
 */
export type WalOptionsFor<C extends CodecOption> = Omit<WalOptions<EventIn<C>, EventOut<C>>, 'codec'> & { codec?: C };

export interface TornTail {
  segmentId: number;
  /** Where the log was cut (or, for a read-only reader, would be): the end of the last good frame. */
  offset: number;
  /** Bytes from `offset` to the last non-zero byte: what the cut removes from the segment. */
  discardedBytes: number;
  /** Why the bytes at `offset` were not a frame. */
  cause: string;
  /**
   * Valid frames found after the damage. 0 for a torn write (nothing readable
   * after it); more means damage in the middle of written data, as media
   * corruption or a power cut that reordered unsynced pages leaves it.
   */
  validFramesAfter: number;
  /** The LSNs those frames carry; null when there are none. */
  lsnRangeAfter: { first: number; last: number } | null;
  /**
   * The file open copied the cut bytes to before cutting (docs/FORMAT.md,
   * "Quarantine files"); null from a read-only reader, which cuts nothing.
   */
  quarantineFile: string | null;
}

export interface Recovery {
  /** The log's identity (32 hex digits; docs/FORMAT.md); null from a reader of a log that has none yet. */
  logId: string | null;
  /** Highest LSN in the log (0 when empty). */
  maxLsn: number;
  tornTail: TornTail | null;
  /** The fence replay used: the `checkpointLsn` given, or the one `'marker'` stood for. */
  checkpointLsn: number;
  /** The highest snapshot LSN named by a Checkpoint record, 0 when none. */
  checkpointLsnObserved: number;
  /** Committed transactions replayed (above the fence). */
  transactions: number;
  /** Events replayed (above the fence). */
  events: number;
  /** Transactions dropped because they were aborted. */
  abortedTransactions: number;
  /** Transactions dropped because the log ends before their commit. */
  incompleteTransactions: number;
  /** Segment files read. */
  segments: number;
  /** What open repaired besides a torn tail (docs/DURABILITY.md, "Crash during rotation"), in words. */
  repairs: string[];
}

export interface OpenResult<W, Out> {
  wal: W;
  /** Events of committed transactions in commit order; empty when `onReplay` was given. */
  events: Out[];
  recovery: Recovery;
}

export interface CommitOptions {
  /** In group and none modes, resolve only after an fsync covers this commit. */
  durable?: boolean;
}

/** Options of `wal.readTransactions` (docs/CLI.md, "Reading committed transactions"). */
export interface WalReadOptions {
  /** Yield the transactions committed at or after this LSN. Default: those open replays by default. */
  fromLsn?: number;
  /** Reading may start at this LSN (a yielded transaction's `resume.scanFromLsn`). */
  scanFromLsn?: number;
  /** Ends the iteration, normally. */
  signal?: AbortSignal;
  /** How events are decoded. Default: the Wal's codec. */
  codec?: CodecOption;
}

/** What `close()` / `closeSync()` report. */
export interface CloseReport {
  /** Transactions begun with `wal.begin()` and neither committed nor aborted: replay drops them. */
  droppedTransactions: number;
}

/**
 * A raw record, as `readWal` yields it. A Commit record (kind 7) is a whole
 * committed transaction: `txBeginLsn` is its begin LSN, `lsn` its commit LSN
 * (begin + 2), `payload` a MutationBatch payload (docs/FORMAT.md).
 */
export interface WalRecord {
  kind: RecordKind;
  /** This record's LSN; for a Commit record the last of the three it spans. */
  lsn: number;
  txBeginLsn: number;
  payload: Buffer;
  segmentId: number;
  offset: number;
}

export interface WalStatus {
  dir: string;
  logId: string;
  syncMode: SyncMode;
  durableLsn: number;
  nextLsn: number;
  activeSegmentId: number;
  oldestSegmentId: number;
  /** The first LSN the log still holds: its oldest segment's base LSN. */
  oldestLsn: number;
  /** The snapshot LSN of the log's last Checkpoint record (0 when none): the fence a default open uses. */
  lastCheckpointLsn: number;
  bgFailure: string | null;
  closed: boolean;
  openTransactions: number;
  /** Why new transactions are held (backpressure), one reason per hold; empty when none. */
  commitHolds: string[];
  /** `commit()` calls waiting for the holds to end. */
  waitingCommits: number;
}
