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
  /** Replay fence: transactions committed at or below it are skipped. Default 0. */
  checkpointLsn?: number;
  /** 'native' (the C++ addon, default), 'js' (node:fs only), or your own `WalIo`. */
  io?: 'native' | 'js' | WalIo;
  /** How events become bytes: a `Codec`, or the name of the built-in one with these event types. Default: raw bytes. */
  codec?: Codec<In, Out> | CodecNameFor<In, Out>;
  /** Preallocate each segment to `segmentBytes` so appends never grow the file. Default true. */
  preallocate?: boolean;
  /** Called once per committed transaction during recovery instead of collecting `events`. */
  onReplay?: ReplayHandler<Out>;
}

/**
 * The options of `Wal.open` for the codec option `C` (a name or a `Codec`), so that the events
 * `commit` takes and replay gives follow from it: `{ codec: 'utf8' }` is a log of strings.
 */
export type WalOptionsFor<C extends CodecOption> = Omit<WalOptions<EventIn<C>, EventOut<C>>, 'codec'> & { codec?: C };

export interface TornTail {
  segmentId: number;
  /** Where the log was cut: the end of the last good frame. */
  offset: number;
  /** Non-zero bytes that were cut off. */
  discardedBytes: number;
  /** Why the bytes at `offset` were not a frame. */
  cause: string;
}

export interface Recovery {
  /** Highest LSN in the log (0 when empty). */
  maxLsn: number;
  tornTail: TornTail | null;
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
  /** In group mode, resolve only after an fsync covers this commit. */
  durable?: boolean;
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
  syncMode: SyncMode;
  durableLsn: number;
  nextLsn: number;
  activeSegmentId: number;
  oldestSegmentId: number;
  bgFailure: string | null;
  closed: boolean;
  openTransactions: number;
}
