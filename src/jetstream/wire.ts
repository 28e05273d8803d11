import { WalError } from '../errors.js';
import { FRAME_OVERHEAD, MIN_COMMIT_FRAME_BYTES } from '../format/constants.js';
import type { Crc32 } from '../format/crc.js';
import { CRC_BYTES, LSN_AT, PAYLOAD_AT, TX_BEGIN_AT } from '../format/frame.js';
import { readU64, writeU32, writeU64 } from '../format/little-endian.js';
import { bestAvailableIo } from '../io/resolve.js';
import type { ResumePoint } from '../read/log-stream.js';
import type { MessageHeaders } from './message.js';

/*
 * How committed transactions travel in JetStream messages, byte for byte
 * (docs/REPLICATION.md, "Message layout"). A message carries consecutive
 * committed transactions of one log, or one piece (a chunk) of a transaction
 * too large for a message. Everything a follower needs to apply it, check it
 * and chain it to the message before is in its headers and body.
 */

export const WIRE_FORMAT = '1';

export const HEADER = {
  logId: 'Segwal-Log-Id',
  /** The Nats-Msg-Id of the message before this one on the log's subject, or "-" for the first. */
  previous: 'Segwal-Prev',
  /** `<first commit LSN>-<last commit LSN>` of the transactions in the message. */
  commits: 'Segwal-Commits',
  /** `<fromLsn>/<scanFromLsn>`: where a reader of the source resumes to ship what comes after. */
  resume: 'Segwal-Resume',
  /** `<offset>/<total>`: the bytes of one transaction's encoding this chunk carries. */
  chunk: 'Segwal-Chunk',
  /** CRC-32 (zlib's) of the body, 8 lowercase hex digits. */
  crc: 'Segwal-Crc32',
  format: 'Segwal-Format',
  msgId: 'Nats-Msg-Id',
} as const;

/** A committed transaction as shipped: its LSNs and its events' bytes. */
export interface WireTransaction {
  beginLsn: number;
  commitLsn: number;
  events: Uint8Array[];
  /**
   * The events already in the batch format (u32 count, then u32 length and
   * bytes each: what follows the LSNs on the wire), as a one-frame
   * transaction stores them; `events` is then empty.
   */
  batch?: Uint8Array | null;
}

export type { ResumePoint } from '../read/log-stream.js';

/** A message as built by the shipper and checked by the follower. */
export interface WireMessage {
  msgId: string;
  previous: string | null;
  logId: string;
  firstCommitLsn: number;
  lastCommitLsn: number;
  resume: ResumePoint;
  /** Set for a piece of one transaction. */
  chunk: { offset: number; total: number } | null;
  body: Uint8Array;
}

/** The message id: the log id and the commit LSN, and for a chunk that is not the last, its offset. */
export function messageId(logId: string, commitLsn: number, chunkOffset: number | null = null): string {
  return chunkOffset === null ? `${logId}:${commitLsn}` : `${logId}:${commitLsn}@${chunkOffset}`;
}

const LSN_BYTES = 8;
const COUNT_BYTES = 4;

/** Bytes of one transaction's encoding: u64 begin LSN, u64 commit LSN, u32 count, count × (u32 length, bytes). */
export function encodedSize(tx: WireTransaction): number {
  const batch = tx.batch ?? null;
  if (batch !== null) return 2 * LSN_BYTES + batch.length;
  let size = 2 * LSN_BYTES + COUNT_BYTES;
  for (const event of tx.events) size += COUNT_BYTES + event.length;
  return size;
}

/** Lays `tx` down at `offset` of `target` (which has room for `encodedSize(tx)`); returns the offset after it. */
export function encodeTransaction(target: Buffer, offset: number, tx: WireTransaction): number {
  writeU64(target, tx.beginLsn, offset);
  writeU64(target, tx.commitLsn, offset + LSN_BYTES);
  const batch = tx.batch ?? null;
  if (batch !== null) {
    target.set(batch, offset + 2 * LSN_BYTES);
    return offset + 2 * LSN_BYTES + batch.length;
  }
  writeU32(target, tx.events.length, offset + 2 * LSN_BYTES);
  let at = offset + 2 * LSN_BYTES + COUNT_BYTES;
  for (const event of tx.events) {
    writeU32(target, event.length, at);
    target.set(event, at + COUNT_BYTES);
    at += COUNT_BYTES + event.length;
  }
  return at;
}

/** Bytes of the encoding of the transaction a Commit frame of `frameLength` bytes holds: its payload after the two LSNs. */
export function commitFrameEncodedSize(frameLength: number): number {
  return frameLength - FRAME_OVERHEAD + 2 * LSN_BYTES;
}

/**
 * Room a target needs to take Commit frames whose encodings fill `encodedBytes`:
 * `encodeCommitFrames` copies the frames whole, then shrinks them in place,
 * and a frame is at most 33/24 of its encoding (the smallest, one empty event).
 */
export function commitFramesRoom(encodedBytes: number): number {
  return Math.ceil((encodedBytes * MIN_COMMIT_FRAME_BYTES) / commitFrameEncodedSize(MIN_COMMIT_FRAME_BYTES));
}

/**
 * Lays down the transactions of the Commit frames at `[from, to)` of
 * `frames` (whole frames, checked by the reader) at `offset` of `target`, as
 * `encodeTransaction` does, and returns the offset after them. A frame's
 * payload is already the batch format; only the two LSNs change places (the
 * frame holds the commit LSN first), and its length, kind and CRC go. One
 * copy of all the frames, then each is moved down in place: no view or
 * call per frame beyond a `copyWithin` (`target` needs room for the frames
 * themselves at `offset`: `commitFramesRoom`).
 */
export function encodeCommitFrames(target: Buffer, offset: number, frames: Buffer, from: number, to: number): number {
  target.set(frames.subarray(from, to), offset);
  // A DataView's accesses compile to plain loads and stores; Buffer's read and write methods check their arguments each time.
  const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
  const end = offset + (to - from);
  let write = offset;
  for (let read = offset; read < end; ) {
    const length = view.getUint32(read, true);
    // Read before writing: the encoding's LSNs may land on the frame's own.
    const commitLow = view.getUint32(read + LSN_AT, true);
    const commitHigh = view.getUint32(read + LSN_AT + 4, true);
    const beginLow = view.getUint32(read + TX_BEGIN_AT, true);
    const beginHigh = view.getUint32(read + TX_BEGIN_AT + 4, true);
    view.setUint32(write, beginLow, true);
    view.setUint32(write + 4, beginHigh, true);
    view.setUint32(write + LSN_BYTES, commitLow, true);
    view.setUint32(write + LSN_BYTES + 4, commitHigh, true);
    target.copyWithin(write + 2 * LSN_BYTES, read + PAYLOAD_AT, read + length - CRC_BYTES);
    write += commitFrameEncodedSize(length);
    read += length;
  }
  return write;
}

/** The transactions of a body (a whole message, or a transaction's chunks put back together). */
export function decodeTransactions(body: Buffer, where: string): WireTransaction[] {
  const transactions: WireTransaction[] = [];
  let at = 0;
  const need = (bytes: number) => {
    if (at + bytes > body.length) throw malformedMessage(where, `its body ends inside a transaction (at byte ${at} of ${body.length})`);
  };
  while (at < body.length) {
    need(2 * LSN_BYTES + COUNT_BYTES);
    const beginLsn = readU64(body, at);
    const commitLsn = readU64(body, at + LSN_BYTES);
    const count = body.readUInt32LE(at + 2 * LSN_BYTES);
    at += 2 * LSN_BYTES + COUNT_BYTES;
    if (beginLsn < 1 || commitLsn < beginLsn) throw malformedMessage(where, `a transaction with begin LSN ${beginLsn} and commit LSN ${commitLsn}`);
    const events: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      need(COUNT_BYTES);
      const length = body.readUInt32LE(at);
      at += COUNT_BYTES;
      need(length);
      events.push(body.subarray(at, at + length));
      at += length;
    }
    transactions.push({ beginLsn, commitLsn, events });
  }
  return transactions;
}

/**
 * The transactions of a message's body (a chunked transaction's once joined),
 * checked against its headers: in commit order, the first and the last the
 * ones its Segwal-Commits names (a piece's transaction: that one alone). The
 * CRC covers the body only, so a body that lacks transactions its headers
 * name, or holds more, would otherwise be applied as it is.
 */
export function messageTransactions(message: WireMessage, body: Buffer, where: string): WireTransaction[] {
  const transactions = decodeTransactions(body, where);
  for (let i = 1; i < transactions.length; i++) {
    const [before, tx] = [transactions[i - 1] as WireTransaction, transactions[i] as WireTransaction];
    if (tx.commitLsn <= before.commitLsn) throw malformedMessage(where, `its body holds commit LSN ${tx.commitLsn} after ${before.commitLsn}`);
  }
  const first = transactions[0]?.commitLsn;
  const last = transactions.at(-1)?.commitLsn;
  if (first !== message.firstCommitLsn || last !== message.lastCommitLsn) {
    const holds = first === undefined ? 'no transaction' : `the commits ${first}-${last}`;
    throw malformedMessage(where, `its body holds ${holds}, but its ${HEADER.commits} header names ${message.firstCommitLsn}-${message.lastCommitLsn}`);
  }
  return transactions;
}

/** The headers of `message`, as published. */
export function wireHeaders(message: WireMessage): MessageHeaders {
  const headers: MessageHeaders = {
    [HEADER.logId]: message.logId,
    [HEADER.previous]: message.previous ?? '-',
    [HEADER.commits]: `${message.firstCommitLsn}-${message.lastCommitLsn}`,
    [HEADER.resume]: `${message.resume.fromLsn}/${message.resume.scanFromLsn}`,
    [HEADER.crc]: bodyCrc(message.body),
    [HEADER.format]: WIRE_FORMAT,
  };
  if (message.chunk !== null) headers[HEADER.chunk] = `${message.chunk.offset}/${message.chunk.total}`;
  return headers;
}

/**
 * Reads a stored message back, checking what can be checked on its own: the
 * format, every header, the body's CRC, and that the message id is the one
 * its contents name. Chain and log id are the reader's to check.
 */
export function parseWireMessage(headers: MessageHeaders, body: Uint8Array, where: string): WireMessage {
  const get = (name: string): string => {
    const value = headers[name];
    if (value === undefined) throw malformedMessage(where, `the header ${name} is missing`);
    return value;
  };
  if (get(HEADER.format) !== WIRE_FORMAT) throw malformedMessage(where, `its format is ${get(HEADER.format)}, not ${WIRE_FORMAT}`);
  const [firstCommitLsn, lastCommitLsn] = numbers(get(HEADER.commits), '-', where, HEADER.commits);
  const [fromLsn, scanFromLsn] = numbers(get(HEADER.resume), '/', where, HEADER.resume);
  const chunkHeader = headers[HEADER.chunk];
  const chunk = chunkHeader === undefined ? null : (([offset, total]) => ({ offset, total }))(numbers(chunkHeader, '/', where, HEADER.chunk));
  const logId = get(HEADER.logId);
  const previous = get(HEADER.previous);
  const msgId = get(HEADER.msgId);
  const crc = get(HEADER.crc);
  if (crc !== bodyCrc(body)) throw malformedMessage(where, `its body does not match its ${HEADER.crc} ${crc}`);
  if (firstCommitLsn < 1 || lastCommitLsn < firstCommitLsn) throw malformedMessage(where, `its ${HEADER.commits} header names no commits in order`);
  if (chunk !== null && firstCommitLsn !== lastCommitLsn) throw malformedMessage(where, `it is a piece of one transaction, but its ${HEADER.commits} names several`);
  if (chunk !== null && chunk.offset + body.length > chunk.total) {
    throw malformedMessage(where, `it is a piece of ${body.length} bytes at offset ${chunk.offset}, past the ${chunk.total} bytes its ${HEADER.chunk} gives`);
  }
  const finalPiece = chunk === null || chunk.offset + body.length === chunk.total;
  const expectedId = messageId(logId, lastCommitLsn, finalPiece ? null : (chunk?.offset ?? null));
  if (msgId !== expectedId) throw malformedMessage(where, `its ${HEADER.msgId} is ${msgId}, not ${expectedId} as its contents say`);
  return {
    msgId,
    previous: previous === '-' ? null : previous,
    logId,
    firstCommitLsn,
    lastCommitLsn,
    resume: { fromLsn, scanFromLsn },
    chunk,
    body,
  };
}

/** The CRC-32 of bodies: the addon's when it loads (the same value as zlib's, several times faster here), taken at first use. */
let bodyCrc32: Crc32 | null = null;

function bodyCrc(body: Uint8Array): string {
  bodyCrc32 ??= bestAvailableIo().crc32;
  return bodyCrc32(body).toString(16).padStart(8, '0');
}

function numbers(value: string, separator: string, where: string, header: string): [number, number] {
  const parts = value.split(separator).map(Number);
  if (parts.length !== 2 || !parts.every((part) => Number.isSafeInteger(part) && part >= 0)) {
    throw malformedMessage(where, `its ${header} header is ${JSON.stringify(value)}`);
  }
  return parts as [number, number];
}

function malformedMessage(where: string, what: string): WalError {
  return new WalError('WAL_REPLICATION_MALFORMED', `${where} is not a segwal message: ${what}`);
}
