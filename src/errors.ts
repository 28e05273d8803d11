import { constants as osConstants } from 'node:os';

/** Every code a `WalError` can carry. Stable: callers switch on these. */
export const WAL_ERROR_CODES = [
  'WAL_IO',
  'WAL_INVALID_OPTIONS',
  'WAL_INVALID_EVENT',
  'WAL_ENCODE',
  'WAL_DECODE',
  'WAL_CRC_MISMATCH',
  'WAL_TRUNCATED',
  'WAL_UNKNOWN_KIND',
  'WAL_BAD_SEGMENT_HEADER',
  'WAL_MALFORMED',
  'WAL_ALREADY_OPEN',
  'WAL_POISONED',
  'WAL_CLOSED',
  'WAL_LSN_EXHAUSTED',
  'WAL_BUSY',
  'WAL_REPLAY_HANDLER',
  'WAL_LSN_TRUNCATED',
  'WAL_BACKPRESSURE',
  'WAL_REPLICATION',
  'WAL_REPLICATION_CONFLICT',
  'WAL_REPLICATION_DIVERGED',
  'WAL_REPLICATION_MALFORMED',
] as const;

export type WalErrorCode = (typeof WAL_ERROR_CODES)[number];

/** The codes open and the readers refuse a damaged log with (a frame's own code is the cause): reading again meets them again. */
export const LOG_DAMAGE_CODES: ReadonlySet<WalErrorCode> = new Set(['WAL_MALFORMED', 'WAL_BAD_SEGMENT_HEADER']);

/** Where an error happened, when it happened somewhere in particular. */
export interface WalErrorDetails {
  cause?: unknown;
  /** The file involved (a segment, the directory, the lock file). */
  file?: string;
  /** Byte offset inside `file`. */
  offset?: number;
  /** The LSN of the record involved. */
  lsn?: number;
  /** OS error number (positive, as in `errno.h`) for `WAL_IO`. */
  errno?: number;
  /** The system call that failed, for `WAL_IO`. */
  syscall?: string;
}

export class WalError extends Error {
  override readonly name = 'WalError';
  readonly code: WalErrorCode;
  readonly file: string | undefined;
  readonly offset: number | undefined;
  readonly lsn: number | undefined;
  readonly errno: number | undefined;
  readonly syscall: string | undefined;

  constructor(code: WalErrorCode, message: string, details: WalErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.file = details.file;
    this.offset = details.offset;
    this.lsn = details.lsn;
    this.errno = details.errno;
    this.syscall = details.syscall;
  }
}

/** A location suffix for messages: " (file 0000000003.wal, offset 4096, LSN 17)". */
export function describeLocation(details: Pick<WalErrorDetails, 'file' | 'offset' | 'lsn'>): string {
  const parts: string[] = [];
  if (details.file !== undefined) parts.push(`file ${details.file}`);
  if (details.offset !== undefined) parts.push(`offset ${details.offset}`);
  if (details.lsn !== undefined) parts.push(`LSN ${details.lsn}`);
  return parts.length === 0 ? '' : ` (${parts.join(', ')})`;
}

const errnoNames = new Map<number, string>(
  Object.entries(osConstants.errno).map(([name, value]) => [value, name]),
);

/** The symbolic name of an errno value ("EIO" for 5), or undefined when unknown. */
export function errnoName(errno: number): string | undefined {
  return errnoNames.get(Math.abs(errno));
}

interface SystemErrorLike {
  code?: unknown;
  errno?: unknown;
  syscall?: unknown;
  message?: unknown;
}

/**
 * Wraps an error from the io layer as `WAL_IO`, keeping errno and syscall.
 * A `WalError` passes through untouched so codes chosen deeper are not lost.
 */
export function toIoError(error: unknown, action: string, file?: string): WalError {
  if (error instanceof WalError) return error;
  const sys = (typeof error === 'object' && error !== null ? error : {}) as SystemErrorLike;
  const errno = typeof sys.errno === 'number' ? Math.abs(sys.errno) : undefined;
  const syscall = typeof sys.syscall === 'string' ? sys.syscall : undefined;
  const name = typeof sys.code === 'string' ? sys.code : errno === undefined ? undefined : errnoName(errno);
  const reason = typeof sys.message === 'string' ? sys.message : String(error);
  const detail = name !== undefined && !reason.includes(name) ? `${name}: ${reason}` : reason;
  return new WalError('WAL_IO', `${action} failed: ${detail}${describeLocation({ file })}`, {
    cause: error,
    file,
    errno,
    syscall,
  });
}
