import fs from 'node:fs';
import path from 'node:path';
import { FRAME_OVERHEAD, RecordKind } from '../../src/format/constants.js';
import { referenceCrc32 } from '../../src/format/crc.js';
import { sealFrames, writeFrame } from '../../src/format/frame.js';
import { encodeSegmentHeader } from '../../src/format/header.js';
import { segmentFileName } from '../../src/format/segment-name.js';

/** One record to lay down by hand, for logs no Wal would write. */
export interface CraftedRecord {
  kind: RecordKind;
  lsn: number;
  txBeginLsn?: number;
  payload?: Uint8Array;
}

/** A segment's bytes: header, then the records' frames, built with the format module. */
export function craftSegment(baseLsn: number, records: readonly CraftedRecord[], sealed = false): Buffer {
  const header = encodeSegmentHeader({ baseLsn, sealed }, referenceCrc32);
  const frames = records.map((record) => {
    const frame = Buffer.alloc(FRAME_OVERHEAD + (record.payload?.length ?? 0));
    writeFrame(frame, 0, record.kind, record.lsn, record.txBeginLsn ?? 0, record.payload ?? null);
    sealFrames(frame, referenceCrc32);
    return frame;
  });
  return Buffer.concat([header, ...frames]);
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
