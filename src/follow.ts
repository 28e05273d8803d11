import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { WalError, describeLocation, toIoError } from './errors.js';
import { HEADER_BYTES, MAX_FRAME_BYTES } from './format/constants.js';
import { referenceCrc32 } from './format/crc.js';
import { readFrame } from './format/frame.js';
import { decodeSegmentHeader } from './format/header.js';
import { parseSegmentId, segmentFileName } from './format/segment-name.js';
import type { WalRecord } from './types.js';

/*
 * Following a log a live Wal appends to. Each poll reads the current segment
 * from just after the last record yielded and yields only whole frames whose
 * CRC holds and whose LSN is the next one: a frame being written is simply not
 * there yet, and is read again from the same offset at the next poll. At the
 * end of a segment's data it moves on once a later segment exists (the Wal
 * creates one only after sealing the one before, so the earlier one is whole
 * by then); a segment deleted by truncation is skipped the same way.
 */

/** Where the follower stands: just after the record with `lastLsn` (0: none seen yet). */
export interface FollowPosition {
  segmentId: number;
  offset: number;
  lastLsn: number;
}

export async function* followLog(
  root: string,
  start: FollowPosition,
  fromLsn: number,
  pollMs: number,
  signal: AbortSignal | undefined,
): AsyncGenerator<WalRecord> {
  const aborted = () => signal?.aborted === true;
  let position = start;
  while (!aborted()) {
    const step = await readNewRecords(root, position, fromLsn);
    for (const record of step.records) {
      if (aborted()) return;
      if (record.lsn >= fromLsn) yield record;
    }
    const moved = step.next.segmentId !== position.segmentId || step.next.offset !== position.offset;
    position = step.next;
    if (!moved) await sleep(pollMs, signal);
  }
}

/** The first read of a poll: enough for a few small frames, cheap when nothing is new. */
const FIRST_WINDOW_BYTES = 4096;
/** One poll reads at most about this much (more only for a single larger frame). */
const POLL_BUDGET_BYTES = 4 << 20;

async function readNewRecords(
  root: string,
  position: FollowPosition,
  fromLsn: number,
): Promise<{ records: WalRecord[]; next: FollowPosition }> {
  const ids = await segmentIds(root);
  let { segmentId, offset, lastLsn } = position;
  if (!ids.includes(segmentId)) {
    // Not created yet, or deleted by truncation after we read it: go on with the next one, if any.
    const later = ids.find((id) => id > segmentId);
    if (later === undefined) return { records: [], next: position };
    segmentId = later;
    offset = 0;
  }
  const later = ids.find((id) => id > segmentId);
  const file = path.join(root, segmentFileName(segmentId));
  const handle = await openSegment(file);
  if (handle === null) return { records: [], next: position }; // deleted between the listing and the open
  try {
    // Reads never go past the size seen now: a length field being written cannot make a poll allocate 256 MiB.
    const size = await sizeOf(handle, file);
    if (offset === 0) {
      const header = await readAt(handle, file, 0, Math.min(HEADER_BYTES, size));
      const baseLsn = baseLsnOf(header, file, later !== undefined);
      if (baseLsn === null) return { records: [], next: position }; // being created right now
      lastLsn = continueAt(baseLsn, lastLsn, fromLsn, file);
      offset = HEADER_BYTES;
    }
    const records: WalRecord[] = [];
    let window = FIRST_WINDOW_BYTES;
    for (let budget = POLL_BUDGET_BYTES; budget > 0; ) {
      const bytes = await readAt(handle, file, offset, Math.max(0, Math.min(window, size - offset)));
      const found = wholeFramesAt(bytes, segmentId, offset, lastLsn);
      records.push(...found.records);
      offset += found.end;
      lastLsn = records.at(-1)?.lsn ?? lastLsn;
      budget -= found.end;
      if (found.needs !== null && bytes.length === window) {
        window = Math.max(window, found.needs); // a frame cut by the window, not by the end of the file: read on
        continue;
      }
      if (bytes.length < window || found.end < bytes.length) {
        // Stopped inside what is there: nothing more yet (or a torn frame being written).
        const atEnd = readFrame(bytes, found.end, bytes.length, referenceCrc32).status === 'end';
        if (records.length === 0 && later !== undefined) {
          if (!atEnd) throw damageBeforeLaterSegment(bytes, found.end, file, offset, lastLsn);
          return { records, next: { segmentId: later, offset: 0, lastLsn } };
        }
        break;
      }
      window = Math.min(window * 4, 1 << 20); // the window was all whole frames: read on, in bigger steps
    }
    return { records, next: { segmentId, offset, lastLsn } };
  } finally {
    await handle.close();
  }
}

/**
 * The LSN the follower has seen up to, on entering a segment with `baseLsn`.
 * Records truncated away before the follower saw them are an error unless it
 * did not want them (below `fromLsn`) or had seen nothing yet.
 */
function continueAt(baseLsn: number, lastLsn: number, fromLsn: number, file: string): number {
  if (baseLsn === lastLsn + 1) return lastLsn;
  if (baseLsn <= lastLsn || (lastLsn > 0 && baseLsn > Math.max(lastLsn + 1, fromLsn))) {
    const why =
      baseLsn <= lastLsn
        ? `segment base LSN ${baseLsn} is not above the last record read (LSN ${lastLsn})`
        : `records from LSN ${lastLsn + 1} were truncated before this reader saw them`;
    const where = { file, offset: 0, lsn: baseLsn };
    throw new WalError('WAL_MALFORMED', `readWal: ${why}${describeLocation(where)}`, where);
  }
  return baseLsn - 1;
}

/** Bytes at `at` that are neither a frame continuing the log nor its end, in a segment a later one follows. */
function damageBeforeLaterSegment(bytes: Buffer, at: number, file: string, offset: number, lastLsn: number): WalError {
  const result = readFrame(bytes, at, bytes.length, referenceCrc32);
  const cause = result.status === 'damage' ? `${result.code}: ${result.reason}` : `a record with LSN ${result.status === 'record' ? result.frame.lsn : '?'} where LSN ${lastLsn + 1} belongs`;
  const where = { file, offset, lsn: lastLsn + 1 };
  return new WalError('WAL_MALFORMED', `readWal: damage in a segment that is not the last: ${cause}${describeLocation(where)}`, where);
}

/** The whole, valid frames at the start of `bytes` that continue the LSN sequence after `lastLsn`. */
function wholeFramesAt(bytes: Buffer, segmentId: number, base: number, lastLsn: number) {
  const records: WalRecord[] = [];
  let at = 0;
  let expected = lastLsn + 1;
  for (;;) {
    const result = readFrame(bytes, at, bytes.length, referenceCrc32);
    if (result.status !== 'record' || result.frame.lsn !== expected) {
      const needs = result.status === 'damage' && result.code === 'WAL_TRUNCATED' ? result.declaredLength : null;
      return { records, end: at, needs: needs !== null && needs <= MAX_FRAME_BYTES ? needs : null };
    }
    const { frame } = result;
    records.push({ kind: frame.kind, lsn: frame.lsn, txBeginLsn: frame.txBeginLsn, payload: Buffer.from(frame.payload), segmentId, offset: base + at });
    at += frame.length;
    expected++;
  }
}

/**
 * The base LSN of a complete header; null while it is still being written.
 * Once a later segment exists this one was finished long ago: a bad header is damage.
 */
function baseLsnOf(bytes: Buffer, file: string, laterExists: boolean): number | null {
  try {
    return decodeSegmentHeader(bytes, file, referenceCrc32).baseLsn;
  } catch (error) {
    if (!laterExists) return null;
    const where = { file, offset: 0 };
    throw new WalError('WAL_MALFORMED', `readWal: a segment that is not the last has a bad header: ${(error as Error).message}`, { ...where, cause: error });
  }
}

async function sizeOf(handle: fsp.FileHandle, file: string): Promise<number> {
  try {
    return (await handle.stat()).size;
  } catch (error) {
    throw toIoError(error, 'stat segment', file);
  }
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

/** Opens a segment for reading; null when it vanished (truncated away) meanwhile. */
async function openSegment(file: string): Promise<fsp.FileHandle | null> {
  try {
    return await fsp.open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw toIoError(error, 'open segment', file);
  }
}

/** Up to `length` bytes from `position`; fewer at the end of the file. */
async function readAt(handle: fsp.FileHandle, file: string, position: number, length: number): Promise<Buffer> {
  try {
    const bytes = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(bytes, done, length - done, position + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return bytes.subarray(0, done);
  } catch (error) {
    throw toIoError(error, 'read segment', file);
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
