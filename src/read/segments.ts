import path from 'node:path';
import { HEADER_BYTES } from '../format/constants.js';
import { decodeSegmentHeader, type SegmentHeader } from '../format/header.js';
import { parseSegmentId } from '../format/segment-name.js';
import { call, type IoProgram } from '../io/program.js';
import type { FrameChecksums } from '../io/types.js';
import { attempt } from '../segment-files.js';
import { SegmentSource } from './segment-source.js';

/** A segment file: its id and path. */
export interface SegmentRef {
  id: number;
  path: string;
}

/** The segment files of `dir` in id order; other files are ignored (docs/FORMAT.md). */
export function* listSegments(dir: string): IoProgram<SegmentRef[]> {
  const names = yield* attempt('list directory', dir, call('listDir', dir));
  const segments: SegmentRef[] = [];
  for (const name of names) {
    const id = parseSegmentId(name);
    if (id !== null) segments.push({ id, path: path.join(dir, name) });
  }
  return segments.sort((a, b) => a.id - b.id);
}

/** A segment's decoded header (null when it does not decode) and its size, read on their own. */
export function* segmentHeaderAndSize(ref: SegmentRef, checksums: FrameChecksums): IoProgram<{ header: SegmentHeader | null; fileBytes: number }> {
  const source = new SegmentSource(ref, checksums);
  yield* source.open();
  try {
    let header: SegmentHeader | null;
    try {
      header = decodeSegmentHeader(yield* source.bytesAt(0, HEADER_BYTES), ref.path, checksums.crc32);
    } catch {
      header = null;
    }
    return { header, fileBytes: yield* source.size() };
  } finally {
    yield* source.close();
  }
}
