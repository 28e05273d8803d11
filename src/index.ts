export { Wal } from './wal.js';
export { Tx } from './tx.js';
export { WalError, WAL_ERROR_CODES, type WalErrorCode } from './errors.js';
export { codecs, type Codecs, type EventSchema } from './codec.js';
export {
  replayDir,
  readWal,
  readTransactions,
  type ReplayDirOptions,
  type ReplayDirOptionsFor,
  type ReadWalOptions,
  type ReadWalOptionsFor,
  type ReadWalRecord,
  type ReadTransactionsOptions,
  type ReadTransactionsOptionsFor,
  type CommittedTransaction,
} from './readers.js';
export type { ResumePoint } from './read/log-stream.js';
export { RecordKind } from './format/constants.js';
export { jsIo } from './io/js.js';
export { createNativeIo } from './io/native.js';
export type { WalIo, IoOps, AsyncIoOps, Fd, LockToken } from './io/types.js';
export type { RetentionHold } from './retention.js';
export type { WalMetrics } from './metrics.js';
export type { HistogramSummary } from './histogram.js';
export type {
  Codec,
  CloseReport,
  CodecName,
  CodecNameFor,
  CodecOption,
  CodecsByName,
  CommitOptions,
  EventIn,
  EventOut,
  OpenResult,
  Recovery,
  ReplayHandler,
  SyncMode,
  SyncOption,
  TailDamagePolicy,
  TornTail,
  TxLsns,
  WalOptions,
  WalOptionsFor,
  WalReadOptions,
  WalRecord,
  WalStatus,
} from './types.js';
