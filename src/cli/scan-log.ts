import path from 'node:path';
import { WalError } from '../errors.js';
import { MAX_LSN, RecordKind } from '../format/constants.js';
import { referenceCrc32 } from '../format/crc.js';
import { jsIo } from '../io/js.js';
import { call, runAsync } from '../io/program.js';
import { LogScanner, listSegments, type ScanTotals, type ScannedSegment, type SegmentRef } from '../replay.js';
import { attempt } from '../segment-files.js';
import { TxSpans } from '../tx-spans.js';
import type { WalRecord } from '../types.js';

/*
 * The read-only pass every command makes: the same LogScanner open uses, over
 * node:fs reads, with no lock taken and no file changed, so it works on a log
 * a live Wal is writing.
 */

export interface SegmentSummary {
  id: number;
  file: string;
  /** null when the segment has only an unfinished header (a Wal creating it right now, or a crash). */
  scanned: ScannedSegment | null;
}

export interface LogScan {
  segments: SegmentSummary[];
  totals: ScanTotals | null;
  /** The first problem open would refuse the log for, or null. */
  damage: WalError | null;
}

export interface ScanLogOptions {
  /** The replay fence to check against, as `Wal.open({ checkpointLsn })` would. Default: no fence. */
  checkpointLsn?: number;
  onRecord?: (record: WalRecord) => void;
  /** Called before each segment is read. */
  onSegment?: (index: number, count: number) => void;
}

export async function scanLog(dir: string, options: ScanLogOptions = {}): Promise<LogScan> {
  const root = path.resolve(dir);
  const refs: SegmentRef[] = await runAsync(jsIo, attempt('list directory', root, listSegments(root)));
  const scanner = new LogScanner({
    checkpointLsn: options.checkpointLsn ?? 0,
    crc32: referenceCrc32,
    spans: new TxSpans(),
    ...(options.onRecord === undefined ? {} : { onRecord: options.onRecord }),
  });
  const segments: SegmentSummary[] = [];
  for (const [index, ref] of refs.entries()) {
    options.onSegment?.(index, refs.length);
    const bytes = await runAsync(jsIo, attempt('read segment', ref.path, call('readFile', ref.path)));
    try {
      segments.push({ id: ref.id, file: ref.path, scanned: scanner.scan(ref, bytes, index === refs.length - 1) });
    } catch (error) {
      if (!(error instanceof WalError) || error.code === 'WAL_IO') throw error;
      return { segments, totals: null, damage: error };
    }
    scanner.takeCommitted(); // only the checks matter here, not the events
  }
  return { segments, totals: scanner.finish(), damage: null };
}

/** The snapshot LSN of the last Checkpoint record: the fence a reopen after `checkpoint()` would use. */
export async function lastCheckpointFence(dir: string): Promise<number> {
  let fence = 0;
  const scan = await scanLog(dir, {
    checkpointLsn: MAX_LSN,
    onRecord: (record) => {
      if (record.kind === RecordKind.Checkpoint) fence = record.txBeginLsn;
    },
  });
  return scan.damage === null ? fence : 0;
}
