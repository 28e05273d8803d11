export { Wal } from './wal.js';
export { Tx } from './tx.js';
export { WalError, WAL_ERROR_CODES, type WalErrorCode } from './errors.js';
export { codecs, type EventSchema } from './codec.js';
export { replayDir, readWal, type ReplayDirOptions, type ReadWalOptions } from './readers.js';
export { RecordKind } from './format/constants.js';
export { jsIo } from './io/js.js';
export { createNativeIo } from './io/native.js';
export type { WalIo, IoOps, AsyncIoOps, Fd, LockToken } from './io/types.js';
export type {
  Codec,
  CommitOptions,
  OpenResult,
  Recovery,
  ReplayHandler,
  SyncMode,
  SyncOption,
  TornTail,
  TxLsns,
  WalOptions,
  WalRecord,
  WalStatus,
} from './types.js';
