/** Segment files are named by id: ten zero-padded decimal digits and ".wal". */
const SEGMENT_NAME = /^(\d{10})\.wal$/;

export const MAX_SEGMENT_ID = 9_999_999_999;

export function segmentFileName(id: number): string {
  return `${String(id).padStart(10, '0')}.wal`;
}

/** The id of a segment file name, or null for any other file (which the log ignores). */
export function parseSegmentId(name: string): number | null {
  const match = SEGMENT_NAME.exec(name);
  if (match === null) return null;
  const id = Number(match[1]);
  return id >= 1 ? id : null;
}
