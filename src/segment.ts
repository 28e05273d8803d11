import { FORMAT_VERSION, HEADER_BYTES } from './format/constants.js';
import type { Fd } from './io/types.js';
import { segmentPath } from './segment-files.js';
import type { Staging } from './staging.js';

/**
 * Where a segment file is in its life (docs/FORMAT.md, "The sealed flag"):
 *   - planned: rotation started it; its file is created (from the spare, or
 *     in place) before its first write;
 *   - open: the file exists with its header and receives appends;
 *   - sealed: sealed on disk and closed; it is never written again, only
 *     deleted by truncation.
 */
export type SegmentState = 'planned' | 'open' | 'sealed';

/** One segment of the log as the writer keeps it. */
export interface Segment {
  id: number;
  /** Its path, built once: every write and error names it. */
  file: string;
  baseLsn: number;
  /** Its header's format version: a segment from before version 2 never receives a Commit record (docs/FORMAT.md). */
  formatVersion: number;
  /** LSN of its last record (staged or written); baseLsn − 1 while empty. */
  lastLsn: number;
  state: SegmentState;
  /** Rotation moved past it: it is sealed as soon as its staged bytes are written. */
  sealWhenWritten: boolean;
  /** Its header says it belongs to a replica (docs/FORMAT.md). */
  replica: boolean;
  /** The open file while `open`; null otherwise. */
  fd: Fd | null;
  /** File offset up to which bytes are written. */
  writtenEnd: number;
  /** File offset up to which bytes are written or staged. */
  stagedEnd: number;
  /** File offset up to which a writeback of written bytes was started (`LogWriter.startWritebackIfDue`). */
  writebackEnd: number;
  /** Bytes encoded and not yet written. */
  staging: Staging | null;
}

/** A segment rotation starts: nothing on disk yet. */
export function plannedSegment(dir: string, id: number, baseLsn: number, replica: boolean): Segment {
  return {
    id,
    file: segmentPath(dir, id),
    baseLsn,
    formatVersion: FORMAT_VERSION,
    lastLsn: baseLsn - 1,
    state: 'planned',
    sealWhenWritten: false,
    replica,
    fd: null,
    writtenEnd: HEADER_BYTES,
    stagedEnd: HEADER_BYTES,
    writebackEnd: HEADER_BYTES,
    staging: null,
  };
}

/** A sealed segment recovery found on disk. */
export function sealedSegment(dir: string, id: number, baseLsn: number, lastLsn: number, replica: boolean, formatVersion: number): Segment {
  return { ...plannedSegment(dir, id, baseLsn, replica), formatVersion, lastLsn, state: 'sealed' };
}

/** What recovery found in a segment it reopens for appending. */
export interface FoundSegment {
  lastLsn: number;
  dataEnd: number;
  formatVersion: number;
}

/** An open segment: just created (empty), or reopened by recovery as `found`. */
export function openSegment(
  dir: string,
  id: number,
  baseLsn: number,
  fd: Fd,
  replica: boolean,
  found: FoundSegment = { lastLsn: baseLsn - 1, dataEnd: HEADER_BYTES, formatVersion: FORMAT_VERSION },
): Segment {
  const { lastLsn, dataEnd, formatVersion } = found;
  return { ...plannedSegment(dir, id, baseLsn, replica), formatVersion, lastLsn, state: 'open', fd, writtenEnd: dataEnd, stagedEnd: dataEnd, writebackEnd: dataEnd };
}
