import path from 'node:path';
import { parseSegmentId } from '../format/segment-name.js';
import { call, type IoProgram } from '../io/program.js';
import { attempt } from '../segment-files.js';

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
