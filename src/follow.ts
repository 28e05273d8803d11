import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { WalError, toIoError } from './errors.js';
import { FRAME_OVERHEAD, HEADER_BYTES } from './format/constants.js';
import { referenceCrc32 } from './format/crc.js';
import { readFrame } from './format/frame.js';
import { decodeSegmentHeader } from './format/header.js';
import { parseSegmentId, segmentFileName } from './format/segment-name.js';
import type { WalRecord } from './types.js';

/*
 * Tailing a log a live Wal appends to (`readWal(dir, { follow: true })`).
 * Each poll reads the current segment from just after the last record
 * yielded and yields only whole frames whose CRC holds and whose LSN is the
 * next one: a frame being written is simply not there yet. At the end of a
 * segment's data, once a later segment exists (it is created only after the
 * earlier one is sealed), it moves on; a segment deleted by truncation is
 * skipped the same way.
 */

/** Where the follower stands: just after the record with `lastLsn`. */
export interface FollowPosition {
  segmentId: number;
  offset: number;
  lastLsn: number;
}

/** The position after `record`, as yielded by the initial scan. */
export function positionAfter(record: WalRecord): FollowPosition {
  return { segmentId: record.segmentId, offset: record.offset + FRAME_OVERHEAD + record.payload.length, lastLsn: record.lsn };
}

export async function* followLog(
  root: string,
  start: FollowPosition,
  fromLsn: number,
  pollMs: number,
  signal: AbortSignal | undefined,
): AsyncGenerator<WalRecord> {
  let position = start;
  while (signal?.aborted !== true) {
    const step = await readNewRecords(root, position);
    for (const record of step.records) if (record.lsn >= fromLsn) yield record;
    const moved = step.next.segmentId !== position.segmentId || step.next.offset !== position.offset;
    position = step.next;
    if (!moved) await sleep(pollMs, signal);
  }
}

/** How much of a segment one poll reads at most, unless a single frame is bigger. */
const READ_WINDOW_BYTES = 1 << 20;

async function readNewRecords(root: string, position: FollowPosition): Promise<{ records: WalRecord[]; next: FollowPosition }> {
  const ids = await segmentIds(root);
  let { segmentId, offset } = position;
  const { lastLsn } = position;
  if (!ids.includes(segmentId)) {
    // Not created yet, or deleted by truncation after we read it: go on with the next one, if any.
    const later = ids.find((id) => id > segmentId);
    if (later === undefined) return { records: [], next: position };
    segmentId = later;
    offset = 0;
  }
  const file = path.join(root, segmentFileName(segmentId));
  if (offset === 0) {
    const header = await readRange(file, 0, HEADER_BYTES);
    if (header === null || !startsAt(header, file, lastLsn + 1)) return { records: [], next: position };
    offset = HEADER_BYTES;
  }
  let window = READ_WINDOW_BYTES;
  for (;;) {
    const bytes = await readRange(file, offset, window);
    if (bytes === null) return { records: [], next: position };
    const { records, end, needs } = wholeFramesAfter(bytes, segmentId, offset, lastLsn);
    const next = { segmentId, offset: offset + end, lastLsn: records.at(-1)?.lsn ?? lastLsn };
    if (records.length > 0) return { records, next };
    if (needs !== null && bytes.length === window && needs > window) {
      window = needs; // one frame bigger than the window, not yet complete in it: read it whole
      continue;
    }
    const later = ids.find((id) => id > segmentId);
    const atEnd = readFrame(bytes, 0, bytes.length, referenceCrc32).status === 'end';
    return { records, next: later !== undefined && atEnd ? { segmentId: later, offset: 0, lastLsn } : next };
  }
}

/** The whole, valid frames at the start of `bytes` that continue the LSN sequence. */
function wholeFramesAfter(bytes: Buffer, segmentId: number, base: number, lastLsn: number) {
  const records: WalRecord[] = [];
  let at = 0;
  let expected = lastLsn + 1;
  for (;;) {
    const result = readFrame(bytes, at, bytes.length, referenceCrc32);
    if (result.status !== 'record' || result.frame.lsn !== expected) {
      const needs = result.status === 'damage' && result.code === 'WAL_TRUNCATED' ? result.declaredLength : null;
      return { records, end: at, needs };
    }
    const { frame } = result;
    records.push({ kind: frame.kind, lsn: frame.lsn, txBeginLsn: frame.txBeginLsn, payload: Buffer.from(frame.payload), segmentId, offset: base + at });
    at += frame.length;
    expected++;
  }
}

/** True when the segment's header is complete and it continues right after `lastLsn`. */
function startsAt(bytes: Buffer, file: string, nextLsn: number): boolean {
  let baseLsn: number;
  try {
    baseLsn = decodeSegmentHeader(bytes, file, referenceCrc32).baseLsn;
  } catch {
    return false; // being created right now: look again at the next poll
  }
  if (baseLsn > nextLsn) {
    throw new WalError('WAL_MALFORMED', `readWal: records from LSN ${nextLsn} were truncated before this reader saw them (${file} starts at LSN ${baseLsn})`, {
      file,
      offset: 0,
      lsn: baseLsn,
    });
  }
  return true;
}

async function segmentIds(root: string): Promise<number[]> {
  try {
    return (await fsp.readdir(root))
      .map(parseSegmentId)
      .filter((id): id is number => id !== null)
      .sort((a, b) => a - b);
  } catch (error) {
    throw toIoError(error, 'list directory', root);
  }
}

/** Up to `length` bytes of `file` from `position`; null when the file vanished (truncated away) meanwhile. */
async function readRange(file: string, position: number, length: number): Promise<Buffer | null> {
  let handle;
  try {
    handle = await fsp.open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw toIoError(error, 'open segment', file);
  }
  try {
    const size = (await handle.stat()).size;
    const bytes = Buffer.alloc(Math.max(0, Math.min(length, size - position)));
    let done = 0;
    while (done < bytes.length) {
      const { bytesRead } = await handle.read(bytes, done, bytes.length - done, position + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return bytes.subarray(0, done);
  } catch (error) {
    throw toIoError(error, 'read segment', file);
  } finally {
    await handle.close();
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
