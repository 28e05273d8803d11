/** The on-disk format (docs/FORMAT.md). The only place these numbers live. */

/** "SEGWAL\0\0": the first eight bytes of every segment. */
export const SEGMENT_MAGIC: Buffer = Buffer.from('SEGWAL\0\0', 'latin1');
/** The version new segments get: 2, which may hold Commit records. */
export const FORMAT_VERSION = 2;
/** The oldest version readers accept: 1, the same format without the Commit record. */
export const OLDEST_FORMAT_VERSION = 1;
/** The first version whose segments may hold Commit records. */
export const COMMIT_RECORD_VERSION = 2;
export const HEADER_BYTES = 32;
/** Header flag bit 0: the segment is sealed and will never be appended to again. */
export const FLAG_SEALED = 1;
/** Header flag bit 1: the segment belongs to a replica and may hold Replicated records. */
export const FLAG_REPLICA = 2;

/** length(4) + kind(1) + lsn(8) + tx_begin_lsn(8) + crc(4). */
export const FRAME_OVERHEAD = 25;
export const MAX_FRAME_BYTES = 256 * 1024 * 1024;
/** A MutationBatch payload: u32 count, then count × (u32 length, bytes). */
export const BATCH_COUNT_BYTES = 4;
/** A Replicated payload starts with the u64 stream sequence of the message that carried it. */
export const REPLICATED_SEQ_BYTES = 8;
export const BATCH_ENTRY_OVERHEAD = 4;
/** The largest event a Mutation record can hold. */
export const MAX_EVENT_BYTES = MAX_FRAME_BYTES - FRAME_OVERHEAD;
/** The largest event a MutationBatch can hold (it also carries the count and a length). */
export const MAX_BATCHED_EVENT_BYTES = MAX_EVENT_BYTES - BATCH_COUNT_BYTES - BATCH_ENTRY_OVERHEAD;

export enum RecordKind {
  Mutation = 1,
  TxBegin = 2,
  TxCommit = 3,
  TxAbort = 4,
  Checkpoint = 5,
  MutationBatch = 6,
  /**
   * A whole committed transaction in one frame (format version 2): what
   * TxBegin + MutationBatch + TxCommit would hold, spanning the same three
   * LSNs: tx_begin_lsn is the begin LSN, lsn the commit LSN (begin + 2).
   */
  Commit = 7,
  /** A whole transaction applied from a stream by a replica, at its source's LSNs (docs/FORMAT.md). */
  Replicated = 8,
}

export const RECORD_KIND_NAMES: Readonly<Record<RecordKind, string>> = {
  [RecordKind.Mutation]: 'Mutation',
  [RecordKind.TxBegin]: 'TxBegin',
  [RecordKind.TxCommit]: 'TxCommit',
  [RecordKind.TxAbort]: 'TxAbort',
  [RecordKind.Checkpoint]: 'Checkpoint',
  [RecordKind.MutationBatch]: 'MutationBatch',
  [RecordKind.Commit]: 'Commit',
  [RecordKind.Replicated]: 'Replicated',
};

export function isRecordKind(value: number): value is RecordKind {
  return RECORD_KIND_NAMES[value as RecordKind] !== undefined;
}

/** The LSNs a Commit record spans past its begin LSN: the MutationBatch's and the TxCommit's. */
export const COMMIT_RECORD_SPAN = 2;
/** The smallest Commit record (one empty event): the most LSNs per byte a log can hold, three in 33 bytes. */
export const MIN_COMMIT_FRAME_BYTES = FRAME_OVERHEAD + BATCH_COUNT_BYTES + BATCH_ENTRY_OVERHEAD;

/** A record's first LSN: a Commit record starts at its begin LSN, every other record at its own LSN. */
export function firstLsnOf(record: { kind: RecordKind; lsn: number; txBeginLsn: number }): number {
  return record.kind === RecordKind.Commit ? record.txBeginLsn : record.lsn;
}

/** LSNs are JavaScript numbers: 1 ≤ lsn ≤ 2^53 − 1; 0 means "none". */
export const MAX_LSN = Number.MAX_SAFE_INTEGER;

export const LOCK_FILE_NAME = '.segwal.lock';
