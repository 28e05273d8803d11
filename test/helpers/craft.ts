import fs from 'node:fs';
import path from 'node:path';
import { COMMIT_RECORD_SPAN, FORMAT_VERSION, FRAME_OVERHEAD, RecordKind } from '../../src/format/constants.js';
import { referenceCrc32 } from '../../src/format/crc.js';
import { fillFrameCrcs, writeFrame } from '../../src/format/frame.js';
import { encodeSegmentHeader } from '../../src/format/header.js';
import { segmentFileName } from '../../src/format/segment-name.js';
import { SECTOR_BYTES } from './crash-io.js';

/** One record to lay down by hand, for logs no Wal would write. */
export interface CraftedRecord {
  kind: RecordKind;
  lsn: number;
  txBeginLsn?: number;
  payload?: Uint8Array;
}

/** A segment's bytes: header, then the records' frames, built with the format module. */
export function craftSegment(baseLsn: number, records: readonly CraftedRecord[], sealed = false, formatVersion = FORMAT_VERSION): Buffer {
  const header = encodeSegmentHeader({ baseLsn, sealed, replica: false, formatVersion }, referenceCrc32);
  return Buffer.concat([header, ...records.map(craftFrame)]);
}

/** One record's frame, CRC filled, as the writer lays it down. */
export function craftFrame(record: CraftedRecord): Buffer {
  const frame = Buffer.alloc(FRAME_OVERHEAD + (record.payload?.length ?? 0));
  writeFrame(frame, 0, record.kind, record.lsn, record.txBeginLsn ?? 0, record.payload ?? null);
  fillFrameCrcs(frame, referenceCrc32);
  return frame;
}

/**
 * `frame` as a power cut may leave it after writing it at file offset
 * `position` over preallocated zeros: its first and last 512-byte sectors
 * reached the disk, the ones between did not (still zeros). Length, kind, LSNs
 * and CRC are all there; only the CRC can tell. The frame must span at least
 * three sectors.
 */
export function tornWrite(frame: Buffer, position: number): Buffer {
  const firstSectorEnd = (Math.floor(position / SECTOR_BYTES) + 1) * SECTOR_BYTES - position;
  const lastSectorStart = Math.floor((position + frame.length - 1) / SECTOR_BYTES) * SECTOR_BYTES - position;
  if (lastSectorStart <= firstSectorEnd) throw new Error('tornWrite: the frame does not span three sectors');
  const torn = Buffer.from(frame);
  torn.fill(0, firstSectorEnd, lastSectorStart);
  return torn;
}

/** A MutationBatch (or Commit) payload, laid out by hand: u32 count, then each event as u32 length + bytes. */
export function batchPayload(events: readonly string[]): Buffer {
  const parts = [u32(events.length)];
  for (const event of events) parts.push(u32(Buffer.byteLength(event)), Buffer.from(event));
  return Buffer.concat(parts);
}

function u32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(value);
  return bytes;
}

/** A Commit record (a whole transaction in one frame) of `events`, begun at `beginLsn`; its LSN is beginLsn + 2. */
export function commitRecord(beginLsn: number, events: readonly string[]): CraftedRecord {
  return { kind: RecordKind.Commit, lsn: beginLsn + COMMIT_RECORD_SPAN, txBeginLsn: beginLsn, payload: batchPayload(events) };
}

/** A committed single-event transaction starting at `lsn`: TxBegin, Mutation, TxCommit. */
export function committedTx(lsn: number, event: string): CraftedRecord[] {
  return [
    { kind: RecordKind.TxBegin, lsn },
    { kind: RecordKind.Mutation, lsn: lsn + 1, txBeginLsn: lsn, payload: Buffer.from(event) },
    { kind: RecordKind.TxCommit, lsn: lsn + 2, txBeginLsn: lsn },
  ];
}

export function writeSegment(dir: string, id: number, bytes: Uint8Array): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, segmentFileName(id));
  fs.writeFileSync(file, bytes);
  return file;
}

export function segmentPath(dir: string, id: number): string {
  return path.join(dir, segmentFileName(id));
}
