import { codecs } from '../codec.js';
import { WalError } from '../errors.js';
import { awaitValue, isSyncAwaitRefusal, type IoProgram } from '../io/program.js';
import type { FrameChecksums } from '../io/types.js';
import type { Codec, Recovery, ReplayHandler, TornTail, TxLsns } from '../types.js';
import { resolveFence } from './fence.js';
import { LogValidator, type ScannedSegment, type ValidatorStep } from './log-validator.js';
import { listSegments, type SegmentRef } from './segments.js';
import { TxAssembler, type CommittedTx, type TxObserver } from './tx-assembler.js';

/** What a whole replay found: the figures of `Recovery`, and the LSN the next record must carry. */
export type ReplayTotals = Omit<Recovery, 'tornTail' | 'repairs' | 'checkpointLsn' | 'logId'> & { nextLsn: number };

/** The log as one replay found it. */
export interface ReplayedLog<Out> {
  refs: SegmentRef[];
  /** Every segment read to its end, in order. */
  scanned: ScannedSegment[];
  /** The last segment's scan; null when it held only an unfinished header (or there are no segments). */
  last: ScannedSegment | null;
  totals: ReplayTotals;
  /** The fence the replay used: the one given, or the one `'marker'` stood for. */
  fence: number;
  events: Out[];
}

export interface ReplayOptions<Out> {
  fence: number | 'marker';
  checksums: FrameChecksums;
  codec: Codec<unknown, Out>;
  onReplay: ReplayHandler<Out> | null;
  /** Listens to transactions and segments (open's truncation bookkeeping). */
  observer?: TxObserver & { segmentEnded?(segmentId: number): void };
}

/**
 * Open's replay, and replayDir's: every segment in order through the one
 * validator and assembler, committed transactions above the fence decoded
 * and collected or handed to `onReplay`.
 */
export function* replayLog<Out>(dir: string, options: ReplayOptions<Out>): IoProgram<ReplayedLog<Out>> {
  const refs = yield* listSegments(dir);
  const fence = yield* resolveFence(refs, options.fence, options.checksums);
  const assembler = new TxAssembler(fence, options.observer);
  // With onReplay, events live only until their callback settles, so the
  // reader's window is reused (the events of open transactions copied first).
  const reuse = options.onReplay === null ? null : { beforeReuse: () => assembler.detachOpenEvents(), buffers: [] };
  const validator = new LogValidator(dir, refs, { checksums: options.checksums, reuse, follow: false });
  const events: Out[] = [];
  const scanned: ScannedSegment[] = [];
  let last: ScannedSegment | null = null;
  let maxLsn = 0;
  try {
    for (;;) {
      const inWindow = validator.recordInWindow();
      const step: ValidatorStep = inWindow === null ? yield* validator.next() : { type: 'record', record: inWindow };
      if (step.type === 'end') break;
      if (step.type === 'record') {
        maxLsn = step.record.lsn;
        const tx = assembler.push(step.record, validator.firstBaseLsn as number);
        if (tx !== null) yield* deliver(tx, options.codec, options.onReplay, events);
      } else if (step.type === 'segment') {
        scanned.push(step.segment);
        if (!step.segment.isLast || step.segment.sealed) options.observer?.segmentEnded?.(step.segment.ref.id);
        if (step.segment.isLast) last = step.segment;
      }
    }
  } finally {
    // A refusal by the assembler, a handler or a codec leaves a segment open.
    yield* validator.close();
  }
  const incompleteTransactions = assembler.finish();
  const totals: ReplayTotals = {
    maxLsn,
    nextLsn: validator.nextLsn,
    checkpointLsnObserved: assembler.checkpointLsnObserved,
    transactions: assembler.transactions,
    events: assembler.events,
    abortedTransactions: assembler.abortedTransactions,
    incompleteTransactions,
    segments: refs.length,
  };
  return { refs, scanned, last, totals, fence, events };
}

/** The recovery report of a replayed log; `repairs` lists what open did (or would do). */
export function recoveryReport(
  log: ReplayedLog<unknown>,
  found: { logId: string | null; repairs: string[]; tornTail: TornTail | null },
): Recovery {
  const { totals } = log;
  const { logId, repairs, tornTail } = found;
  return {
    logId,
    maxLsn: totals.maxLsn,
    tornTail,
    checkpointLsn: log.fence,
    checkpointLsnObserved: totals.checkpointLsnObserved,
    transactions: totals.transactions,
    events: totals.events,
    abortedTransactions: totals.abortedTransactions,
    incompleteTransactions: totals.incompleteTransactions,
    segments: totals.segments,
    repairs,
  };
}

/** Decodes one committed transaction's events with the codec. */
export function decodeEvents<Out>(tx: Pick<CommittedTx, 'events' | 'eventLsns'>, codec: Codec<unknown, Out>): Out[] {
  // The bytes codec hands the bytes over as they are: no array to copy.
  if (codec === (codecs.bytes as Codec<unknown, unknown>)) return tx.events as Out[];
  const { eventLsns } = tx;
  const decoded = new Array<Out>(tx.events.length);
  for (let i = 0; i < tx.events.length; i++) {
    const lsn = typeof eventLsns === 'number' ? eventLsns : (eventLsns[i] as number);
    try {
      decoded[i] = codec.decode(tx.events[i] as Buffer, lsn);
    } catch (error) {
      throw decodeError(error, lsn);
    }
  }
  return decoded;
}

/** Makes a codec decode error name its LSN when the codec did not. */
function decodeError(error: unknown, lsn: number): WalError {
  if (error instanceof WalError) return error;
  return new WalError('WAL_DECODE', `event at LSN ${lsn} does not decode: ${(error as Error)?.message ?? String(error)}`, {
    lsn,
    cause: error,
  });
}

/** Decodes one committed transaction and hands it to `onReplay` or the events list. */
function* deliver<Out>(tx: CommittedTx, codec: Codec<unknown, Out>, onReplay: ReplayHandler<Out> | null, events: Out[]): IoProgram<void> {
  const decoded = decodeEvents(tx, codec);
  if (onReplay === null) {
    for (const event of decoded) events.push(event);
    return;
  }
  let returned: unknown;
  try {
    returned = onReplay(decoded, tx.lsns);
  } catch (error) {
    throw replayHandlerFailed(error, tx.lsns);
  }
  try {
    yield* awaitValue(returned);
  } catch (error) {
    throw isSyncAwaitRefusal(error) ? error : replayHandlerFailed(error, tx.lsns);
  }
}

function replayHandlerFailed(error: unknown, lsns: TxLsns): WalError {
  const reason = error instanceof Error ? error.message : String(error);
  return new WalError(
    'WAL_REPLAY_HANDLER',
    `onReplay failed for the transaction with begin LSN ${lsns.beginLsn} and commit LSN ${lsns.commitLsn}: ${reason}`,
    { lsn: lsns.commitLsn, cause: error },
  );
}
