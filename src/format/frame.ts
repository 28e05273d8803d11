import type { WalErrorCode } from '../errors.js';
import type { Crc32 } from './crc.js';
import {
  BATCH_COUNT_BYTES,
  BATCH_ENTRY_OVERHEAD,
  COMMIT_RECORD_SPAN,
  FRAME_OVERHEAD,
  MAX_FRAME_BYTES,
  RECORD_KIND_NAMES,
  REPLICATED_SEQ_BYTES,
  RecordKind,
  isRecordKind,
} from './constants.js';
import { readU64, u64Equals, writeU32, writeU64 } from './little-endian.js';

/*
 * Record frame (docs/FORMAT.md, "Frames"), little-endian:
 *   0..4 length | 4 kind | 5..13 lsn | 13..21 tx_begin_lsn | 21..length-4 payload | crc
 * The CRC covers bytes 0..length-4.
 */
const KIND_AT = 4;
export const LSN_AT = 5;
export const TX_BEGIN_AT = 13;
export const PAYLOAD_AT = 21;
export const CRC_BYTES = 4;

export function batchPayloadBytes(events: readonly Uint8Array[]): number {
  let bytes = BATCH_COUNT_BYTES;
  for (const event of events) bytes += BATCH_ENTRY_OVERHEAD + event.length;
  return bytes;
}

/*
 * Encoding is in two steps: `writeFrame`/`writeBatchFrame` lay frames down
 * with their CRC trailer left open, and `fillFrameCrcs` fills in the trailers of
 * a whole run of frames at once, right before it is written. That lets the
 * native backend fill in the CRCs of a batch in the same call, off the event loop, that
 * writes it (io `appendFrames`).
 */

/**
 * Writes one unsealed frame at `offset` of `target` (which must have room for
 * FRAME_OVERHEAD + payload bytes) and returns the offset just after it.
 */
export function writeFrame(
  target: Buffer,
  offset: number,
  kind: RecordKind,
  lsn: number,
  txBeginLsn: number,
  payload: Uint8Array | null,
): number {
  const payloadBytes = payload === null ? 0 : payload.length;
  const length = FRAME_OVERHEAD + payloadBytes;
  writeFrameFields(target, offset, length, kind, lsn, txBeginLsn);
  if (payload !== null) target.set(payload, offset + PAYLOAD_AT);
  return offset + length;
}

/**
 * Writes an unsealed frame whose payload is the batch of `events`: a
 * MutationBatch, or a Commit (the same payload); `payloadBytes` is
 * `batchPayloadBytes(events)`.
 */
export function writeBatchFrame(
  target: Buffer,
  offset: number,
  kind: RecordKind.MutationBatch | RecordKind.Commit,
  lsn: number,
  txBeginLsn: number,
  events: readonly Uint8Array[],
  payloadBytes: number,
): number {
  const length = FRAME_OVERHEAD + payloadBytes;
  writeFrameFields(target, offset, length, kind, lsn, txBeginLsn);
  writeBatchEntries(target, offset + PAYLOAD_AT, events);
  return offset + length;
}

/** u32 count, then count × (u32 length, bytes), at `at`. */
function writeBatchEntries(target: Buffer, at: number, events: readonly Uint8Array[]): void {
  writeU32(target, events.length, at);
  at += BATCH_COUNT_BYTES;
  for (const event of events) {
    writeU32(target, event.length, at);
    target.set(event, at + BATCH_ENTRY_OVERHEAD);
    at += BATCH_ENTRY_OVERHEAD + event.length;
  }
}

function writeFrameFields(
  target: Buffer,
  offset: number,
  length: number,
  kind: RecordKind,
  lsn: number,
  txBeginLsn: number,
): void {
  writeU32(target, length, offset);
  target[offset + KIND_AT] = kind;
  writeU64(target, lsn, offset + LSN_AT);
  writeU64(target, txBeginLsn, offset + TX_BEGIN_AT);
}

/**
 * Fills in the CRC trailer of every whole frame in `frames` (back to back from
 * its start). Stops at a length out of range or past the end, as the native
 * FillFrameCrcs does; returns the bytes of the frames filled in.
 */
export function fillFrameCrcs(frames: Uint8Array, crc32: Crc32): number {
  const view = Buffer.from(frames.buffer, frames.byteOffset, frames.byteLength);
  let at = 0;
  while (view.length - at >= FRAME_OVERHEAD) {
    const length = view.readUInt32LE(at);
    if (length < FRAME_OVERHEAD || length > view.length - at) break;
    const crcAt = at + length - CRC_BYTES;
    view.writeUInt32LE(crc32(view.subarray(at, crcAt)), crcAt);
    at += length;
  }
  return at;
}

export interface DecodedFrame {
  kind: RecordKind;
  lsn: number;
  txBeginLsn: number;
  /** A view into the source buffer (not a copy). */
  payload: Buffer;
  /** Whole frame length in bytes. */
  length: number;
}

export type FrameReadResult =
  | { status: 'record'; frame: DecodedFrame }
  /** A zero length or the end of the bytes, at a frame boundary: the end of the log. */
  | { status: 'end' }
  /** The bytes at this offset are not a frame. `declaredLength` is the length field when it was in range. */
  | { status: 'damage'; code: WalErrorCode; reason: string; declaredLength: number | null };

/**
 * Reads the frame at `offset`, looking no further than `end`. `crc32` null:
 * the caller has checked this frame's CRC already (a window of frames checked
 * in one call, WalIo `checkFrameCrcs`).
 */
export function readFrame(source: Buffer, offset: number, end: number, crc32: Crc32 | null): FrameReadResult {
  const available = end - offset;
  if (available <= 0) return { status: 'end' };
  if (available < 4) {
    return isZero(source, offset, end)
      ? { status: 'end' }
      : damage('WAL_TRUNCATED', `only ${available} bytes left where a frame length belongs`, null);
  }
  const length = source.readUInt32LE(offset);
  if (length === 0) return { status: 'end' };
  if (length < FRAME_OVERHEAD || length > MAX_FRAME_BYTES) {
    return damage('WAL_MALFORMED', `frame length ${length} is outside ${FRAME_OVERHEAD}..${MAX_FRAME_BYTES}`, null);
  }
  if (length > available) {
    return damage('WAL_TRUNCATED', `frame of ${length} bytes but only ${available} bytes left`, length);
  }
  if (crc32 !== null && !frameCrcMatches(source, offset, length, crc32)) {
    return damage('WAL_CRC_MISMATCH', 'frame CRC does not match its bytes', length);
  }
  const kind = source[offset + KIND_AT] as number;
  if (!isRecordKind(kind)) return damage('WAL_UNKNOWN_KIND', `unknown record kind ${kind}`, length);
  const lsn = readU64(source, offset + LSN_AT);
  const txBeginLsn = readU64(source, offset + TX_BEGIN_AT);
  const payload = source.subarray(offset + PAYLOAD_AT, offset + length - CRC_BYTES);
  const payloadProblem = describePayloadProblem(kind, payload);
  if (payloadProblem !== null) return damage('WAL_MALFORMED', payloadProblem, length);
  return { status: 'record', frame: { kind, lsn, txBeginLsn, payload, length } };
}

/** Whether the CRC trailer of the whole frame of `length` bytes at `offset` matches the bytes before it. */
export function frameCrcMatches(source: Buffer, offset: number, length: number, crc32: Crc32): boolean {
  const crcAt = offset + length - CRC_BYTES;
  return crc32(source.subarray(offset, crcAt)) === source.readUInt32LE(crcAt);
}

function damage(code: WalErrorCode, reason: string, declaredLength: number | null): FrameReadResult {
  return { status: 'damage', code, reason, declaredLength };
}

function describePayloadProblem(kind: RecordKind, payload: Buffer): string | null {
  switch (kind) {
    case RecordKind.Mutation:
      return null;
    case RecordKind.MutationBatch:
    case RecordKind.Commit:
      return describeBatchProblem(payload, 0, payload.length, RECORD_KIND_NAMES[kind], 1);
    case RecordKind.Replicated:
      if (payload.length < REPLICATED_SEQ_BYTES) return 'Replicated payload has no stream sequence';
      return describeBatchProblem(payload, REPLICATED_SEQ_BYTES, payload.length, 'Replicated', 0);
    default:
      return payload.length === 0 ? null : `a ${RecordKind[kind]} record carries ${payload.length} payload bytes`;
  }
}

/**
 * The events of a batch at `[start, end)` of `source` (a MutationBatch's or
 * Commit's payload, or a Replicated record's after its sequence), checked;
 * `minCount` events at least.
 */
function describeBatchProblem(source: Buffer, start: number, end: number, name: string, minCount: number): string | null {
  if (end - start < BATCH_COUNT_BYTES) return `${name} payload has no count`;
  const count = source.readUInt32LE(start);
  if (count < minCount) return `${name} count is ${count}`;
  let at = start + BATCH_COUNT_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + BATCH_ENTRY_OVERHEAD > end) return `${name} entry ${i} of ${count} is missing`;
    at += BATCH_ENTRY_OVERHEAD + source.readUInt32LE(at);
    if (at > end) return `${name} entry ${i} runs past the payload`;
  }
  return at === end ? null : `${name} has ${end - at} bytes after its ${count} entries`;
}

/**
 * The length of the frame at `offset` (before `end`) when it is a Commit
 * record that begins at LSN `beginLsn`, spans its three LSNs and holds a
 * payload `readFrame` accepts; 0 for anything else, which `readFrame` then
 * reads and tells apart. The CRC is the caller's to check. For a walk over
 * consecutive one-frame transactions with no object per frame (the
 * shipper's reads).
 */
export function commitFrameLengthAt(source: Buffer, offset: number, end: number, beginLsn: number): number {
  if (end - offset < FRAME_OVERHEAD) return 0;
  const length = source.readUInt32LE(offset);
  if (length < FRAME_OVERHEAD || length > MAX_FRAME_BYTES || length > end - offset) return 0;
  if (source[offset + KIND_AT] !== RecordKind.Commit) return 0;
  if (!u64Equals(source, offset + TX_BEGIN_AT, beginLsn) || !u64Equals(source, offset + LSN_AT, beginLsn + COMMIT_RECORD_SPAN)) return 0;
  return describeBatchProblem(source, offset + PAYLOAD_AT, offset + length - CRC_BYTES, 'Commit', 1) === null ? length : 0;
}

/** A Replicated record's payload, already checked by `readFrame`: the stream sequence and the events, as views. */
export function replicatedPayload(payload: Buffer): { streamSeq: number; events: Buffer[] } {
  return { streamSeq: readU64(payload, 0), events: batchEvents(payload.subarray(REPLICATED_SEQ_BYTES)) };
}

/** Writes an unsealed Replicated frame (its CRC is filled in later); returns the offset after it. */
export function writeReplicatedFrame(
  target: Buffer,
  offset: number,
  tx: { beginLsn: number; commitLsn: number; streamSeq: number; events: readonly Uint8Array[] },
): number {
  const length = FRAME_OVERHEAD + REPLICATED_SEQ_BYTES + batchPayloadBytes(tx.events);
  writeFrameFields(target, offset, length, RecordKind.Replicated, tx.commitLsn, tx.beginLsn);
  writeU64(target, tx.streamSeq, offset + PAYLOAD_AT);
  writeBatchEntries(target, offset + PAYLOAD_AT + REPLICATED_SEQ_BYTES, tx.events);
  return offset + length;
}

/** The size of a Replicated frame for `events`. */
export function replicatedFrameBytes(events: readonly Uint8Array[]): number {
  return FRAME_OVERHEAD + REPLICATED_SEQ_BYTES + batchPayloadBytes(events);
}

/** The events a record already checked by `readFrame` carries, as views; null for a marker (TxBegin, TxCommit, TxAbort, Checkpoint). */
export function recordEvents(record: { kind: RecordKind; payload: Buffer }): Buffer[] | null {
  switch (record.kind) {
    case RecordKind.Mutation:
      return [record.payload];
    case RecordKind.MutationBatch:
    case RecordKind.Commit:
      return batchEvents(record.payload);
    case RecordKind.Replicated:
      return replicatedPayload(record.payload).events;
    default:
      return null;
  }
}

/** How many events a MutationBatch or Commit payload already checked by `readFrame` holds. */
export function batchCount(payload: Buffer): number {
  return payload.readUInt32LE(0);
}

/** The events of a MutationBatch or Commit payload already checked by `readFrame`, as views. */
export function batchEvents(payload: Buffer): Buffer[] {
  const count = batchCount(payload);
  const events = new Array<Buffer>(count);
  let at = BATCH_COUNT_BYTES;
  for (let i = 0; i < count; i++) {
    const length = payload.readUInt32LE(at);
    at += BATCH_ENTRY_OVERHEAD;
    events[i] = payload.subarray(at, at + length);
    at += length;
  }
  return events;
}

function isZero(source: Buffer, start: number, end: number): boolean {
  return lastNonZeroByte(source, start, end) < start;
}

/** Index of the last non-zero byte in [start, end), or start - 1 when all are zero. */
export function lastNonZeroByte(source: Buffer, start: number, end: number): number {
  let at = end;
  const CHUNK = 4096;
  while (at - start >= CHUNK) {
    if (!source.subarray(at - CHUNK, at).equals(ZERO_PAGE)) break;
    at -= CHUNK;
  }
  while (at > start && source[at - 1] === 0) at--;
  return at - 1;
}

const ZERO_PAGE = Buffer.alloc(4096);
