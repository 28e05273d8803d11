import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { codecByName } from './codec.js';
import { describeIssues } from './describe-issues.js';
import { followLog, type FollowPosition } from './follow.js';
import { WalError } from './errors.js';
import { FRAME_OVERHEAD, HEADER_BYTES, MAX_LSN } from './format/constants.js';
import { referenceCrc32 } from './format/crc.js';
import { jsIo } from './io/js.js';
import { call, runAsync } from './io/program.js';
import { checkLsnArgument } from './options.js';
import { recoveryReport, replayLog } from './recover.js';
import { LogScanner, listSegments, type SegmentRef } from './replay.js';
import { attempt } from './segment-files.js';
import { TxSpans } from './tx-spans.js';
import type { Codec, CodecNameFor, CodecOption, EventOut, Recovery, ReplayHandler, WalRecord } from './types.js';

/*
 * Read-only access for tools and followers: no lock is taken and no file is
 * changed, so both work on a log a live Wal is writing. A torn tail is
 * reported (replayDir) or simply not yielded (readWal), never cut.
 */

export interface ReplayDirOptions<Out = Buffer> {
  /** Transactions committed at or below it are skipped. Default 0. */
  checkpointLsn?: number;
  codec?: Codec<unknown, Out> | CodecNameFor<unknown, Out>;
  onReplay?: ReplayHandler<Out>;
}

/** `ReplayDirOptions` for the codec option `C`, which types the events (as `WalOptionsFor` does). */
export type ReplayDirOptionsFor<C extends CodecOption> = Omit<ReplayDirOptions<EventOut<C>>, 'codec'> & { codec?: C };

/** Replays a log directory without opening it for writing. */
export function replayDir<C extends CodecOption = 'bytes'>(
  dir: string,
  options?: ReplayDirOptionsFor<C>,
): Promise<{ events: EventOut<C>[]; recovery: Recovery }>;
export async function replayDir<Out>(
  dir: string,
  options: ReplayDirOptions<Out> = {},
): Promise<{ events: Out[]; recovery: Recovery }> {
  const checkpointLsn = checkLsnArgument(options.checkpointLsn ?? 0, 'checkpointLsn');
  const codec = (typeof options.codec === 'string' ? codecByName(options.codec) : (options.codec ?? codecByName('bytes'))) as Codec<
    unknown,
    Out
  >;
  const log = await runAsync(
    jsIo,
    replayLog(path.resolve(dir), { checkpointLsn, crc32: referenceCrc32, spans: new TxSpans() }, codec, options.onReplay ?? null),
  );
  const repairs: string[] = [];
  if (log.refs.length > 0 && log.last === null) repairs.push('open would replace the last segment (unfinished header)');
  else if (log.last?.sealed === true) repairs.push('open would create a new active segment (the last one is sealed)');
  return { events: log.events, recovery: recoveryReport(log, repairs) };
}

export interface ReadWalOptions {
  /** Yield records with an LSN at or above this. Default 1. */
  fromLsn?: number;
  /** After the records on disk, wait for new ones as a live Wal appends them, until `signal` aborts. */
  follow?: boolean;
  /** Ends a `follow` iteration (normally, without an error). */
  signal?: AbortSignal;
  /** How often `follow` looks for new records, in ms. Default 50. */
  pollMs?: number;
}

const readWalOptions = z.strictObject({
  fromLsn: z.number().int().min(1).max(MAX_LSN).optional(),
  follow: z.boolean().optional(),
  signal: z.instanceof(AbortSignal).optional(),
  pollMs: z.number().int().min(1).max(60_000).optional(),
});

/** How often `readWal({ follow: true })` polls by default (docs/CLI.md). */
export const FOLLOW_POLL_MS = 50;

/**
 * Every record of the log in order, as stored, after the same checks open
 * makes; a record that fails them ends the iteration with a WalError (the
 * records before it are yielded first). With `follow`, it then yields records
 * as a live Wal appends them, until `signal` aborts (docs/CLI.md).
 */
export async function* readWal(dir: string, options: ReadWalOptions = {}): AsyncGenerator<WalRecord> {
  const parsed = readWalOptions.safeParse(options ?? {}, { reportInput: true });
  if (!parsed.success) throw new WalError('WAL_INVALID_OPTIONS', `invalid readWal options: ${describeIssues(parsed.error.issues, 'option')}`);
  const { fromLsn = 1, follow = false, signal, pollMs = FOLLOW_POLL_MS } = parsed.data;
  const root = path.resolve(dir);
  const refs = await runAsync(jsIo, attempt('list directory', root, listSegments(root)));
  const pending: WalRecord[] = [];
  let position: FollowPosition = { segmentId: refs[0]?.id ?? 1, offset: 0, lastLsn: 0 };
  const scanner = new LogScanner({
    // Raw records only: no transaction is delivered, and a record whose
    // TxBegin went with a truncated segment is yielded, not refused.
    checkpointLsn: MAX_LSN,
    crc32: referenceCrc32,
    spans: new TxSpans(),
    onRecord: (record) => {
      position = { segmentId: record.segmentId, offset: record.offset + FRAME_OVERHEAD + record.payload.length, lastLsn: record.lsn };
      if (record.lsn >= fromLsn) pending.push(record);
    },
  });
  let scannedAny = false;
  for (const [index, ref] of refs.entries()) {
    const bytes = await readWholeSegment(ref, !scannedAny);
    if (bytes === null) continue; // truncated away before we got to it, and nothing read yet
    scannedAny = true;
    let scanned;
    try {
      scanned = scanner.scan(ref, bytes, index === refs.length - 1);
    } catch (error) {
      yield* pending.splice(0, pending.length); // the good records before the damage
      throw error;
    }
    if (scanned !== null && scanned.records === 0) position = { segmentId: ref.id, offset: HEADER_BYTES, lastLsn: scanned.baseLsn - 1 };
    scanner.takeCommitted();
    yield* pending.splice(0, pending.length);
  }
  if (follow) yield* followLog(root, position, fromLsn, pollMs, signal);
}

/** A whole segment; null when `mayVanish` and truncation deleted it since the listing. */
async function readWholeSegment(ref: SegmentRef, mayVanish: boolean): Promise<Buffer | null> {
  try {
    return await runAsync(jsIo, attempt('read segment', ref.path, call('readFile', ref.path)));
  } catch (error) {
    if (mayVanish && error instanceof WalError && error.errno === osConstants.errno.ENOENT) return null;
    throw error;
  }
}
