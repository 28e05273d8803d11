import type { RecordKind } from './format/constants.js';
import type { WalIo } from './io/types.js';

/** How events become bytes and back. `decode` gets the record's LSN for error messages. */
export interface Codec<In, Out = In> {
  readonly name: string;
  encode(event: In): Uint8Array;
  decode(bytes: Buffer, lsn: number): Out;
}

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
  /** How events become bytes. Default: raw bytes. */
  codec?: Codec<In, Out> | 'bytes' | 'utf8' | 'json';
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
}

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
  /** What open repaired besides a torn tail (a crash window of SPEC §6.6), in words. */
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
}

/** What `close()` / `closeSync()` report. */
export interface CloseReport {
  /** Transactions begun with `wal.begin()` and neither committed nor aborted: replay drops them. */
  droppedTransactions: number;
}

/** A raw record, as `readWal` yields it. */
export interface WalRecord {
  kind: RecordKind;
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
  bgFailure: string | null;
  closed: boolean;
  openTransactions: number;
}
