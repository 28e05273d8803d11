import { setImmediate as nextTurn } from 'node:timers/promises';
import { LOG_DAMAGE_CODES, WalError } from '../errors.js';
import { isCommitRun } from '../read/log-stream.js';
import type { JetStreamConnection } from './connect.js';
import { asReplicationError } from './errors.js';
import { messageAt } from './get-message.js';
import { MessageBuilder, type OnPiece, type SourceItem } from './message-builder.js';
import { publishMessage, type PublishExpectation } from './publish.js';
import { completeUpTo, holeSince, removalsAt, removedNow, streamPosition, type Removals, type StreamPosition } from './stream-position.js';
import { Unacknowledged } from './unacknowledged.js';
import { HEADER, encodedSize, wireHeaders, type ResumePoint, type WireMessage } from './wire.js';

/*
 * The shipper's loop (docs/REPLICATION.md, "Exactly once"): ask the stream
 * where the log's subject stands, read the source's durable committed
 * transactions from there, pack them into chained messages, publish them
 * with a bounded window. On any failure: let what is in flight settle, ask
 * the stream again, and go on from what it holds. It never trusts its own
 * view alone: a stream behind what it acknowledged is divergence, re-shipped
 * from the local log while it still holds the transactions, refused once it
 * does not.
 */

/** Where the shipper reads from: a live Wal in this process, or a log directory. */
export interface ShipperSource {
  /** Durable committed transactions from `resume` on, a batch as read at a time, until `signal` aborts. */
  read(resume: ResumePoint, signal: AbortSignal): AsyncIterable<readonly SourceItem[]>;
  /** Where to start on an empty stream: what a default `Wal.open` replays. */
  start(): Promise<ResumePoint>;
  /** The highest LSN the log holds now: a stream ahead of it is not this log's past. */
  endLsn(): Promise<number>;
  /** The stream holds everything before `resume` (retention may let the log forget it). */
  acknowledged(resume: ResumePoint): void;
}

export interface ShipperConfig {
  connection: JetStreamConnection;
  stream: { name: string; allow_direct?: boolean };
  subject: string;
  logId: string;
  /** The largest body of a message (max_payload less room for headers). */
  maxBody: number;
  /** Messages published and not yet acknowledged, at most. */
  window: number;
  publishTimeoutMs: number;
  /** Failing this long, the shipper reports itself stalled (it goes on retrying). */
  retryBudgetMs: number;
}

export type ShipperState = 'starting' | 'shipping' | 'retrying' | 'stalled' | 'detached' | 'closed' | 'failed';

export interface ShipperStatus {
  state: ShipperState;
  logId: string;
  /** The highest commit LSN published (acknowledged or not); 0 when none. */
  shippedCommitLsn: number;
  /** Every transaction committed at or below it is in the stream, acknowledged. */
  acknowledgedCommitLsn: number;
  /** Messages published and not yet acknowledged. */
  inFlight: number;
  /** The highest commit LSN read from the source (durable there). */
  sourceCommitLsn: number;
  /** Transactions read and not yet acknowledged by the stream, and their bytes as shipped. */
  transactionsBehind: number;
  unacknowledgedBytes: number;
  /** How long the oldest of them has waited since it was read, in ms; 0 when none. */
  oldestUnacknowledgedMs: number;
  /** The stream sequence of the last acknowledged message. */
  streamSeq: number;
  /** Times the stream was found behind what it had acknowledged (and the log re-shipped). */
  divergences: number;
  lastError: string | null;
}

const MIN_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 2_000;
/** How often a shipping cycle looks whether messages were removed from the stream (purged, deleted). */
const REMOVAL_CHECK_MS = 1_000;

export class Shipper {
  private state: ShipperState = 'starting';
  private acked: { commitLsn: number; seq: number; msgId: string } | null = null;
  private shippedCommitLsn = 0;
  private inFlight = 0;
  private sourceCommitLsn = 0;
  private readonly unacked = new Unacknowledged();
  private divergences = 0;
  private lastError: WalError | null = null;
  private readonly stop = new AbortController();
  private waiters: Array<{ lsn: number; resolve(): void; reject(error: WalError): void }> = [];
  private finalError: WalError | null = null;
  /** Where this shipper began on an empty subject: a purged stream is shipped again from there. */
  private origin: ResumePoint | null = null;
  /** The stream's removed sequences at the last look; null before the first. */
  private removals: Removals | null = null;
  /** Settles when shipping has stopped: on close, detach or a failure it cannot retry. */
  readonly done: Promise<void>;

  constructor(
    private readonly config: ShipperConfig,
    private readonly source: ShipperSource,
    /** Told of a failure the shipper cannot retry (it then stops). */
    private readonly onFailure: (error: WalError) => void,
  ) {
    this.done = this.run();
  }

  status(): ShipperStatus {
    const now = Date.now();
    return {
      state: this.state,
      logId: this.config.logId,
      shippedCommitLsn: this.shippedCommitLsn,
      acknowledgedCommitLsn: this.acked?.commitLsn ?? 0,
      inFlight: this.inFlight,
      sourceCommitLsn: this.sourceCommitLsn,
      transactionsBehind: this.unacked.count,
      unacknowledgedBytes: this.unacked.bytes,
      oldestUnacknowledgedMs: now - (this.unacked.oldestReadAt ?? now),
      streamSeq: this.acked?.seq ?? 0,
      divergences: this.divergences,
      lastError: this.lastError?.message ?? null,
    };
  }

  /** Resolves once the stream holds every transaction committed at or below `commitLsn`. */
  acknowledged(commitLsn: number): Promise<void> {
    if ((this.acked?.commitLsn ?? 0) >= commitLsn) return Promise.resolve();
    if (this.finalError !== null) return Promise.reject(this.finalError);
    return new Promise((resolve, reject) => this.waiters.push({ lsn: commitLsn, resolve, reject }));
  }

  /** Stops shipping; resolves once nothing is in flight. `detached`: stopped by the retention policy, for `reason`. */
  async close(state: 'closed' | 'detached' = 'closed', reason?: string): Promise<void> {
    if (!this.stop.signal.aborted) {
      this.stop.abort();
      // Kept for later calls too: nothing more is acknowledged, so a waiter made from now on would wait forever.
      const why = reason === undefined ? '' : ` (${reason})`;
      this.finalError ??= new WalError('WAL_CLOSED', `the shipper was ${state}${why}; nothing more is shipped`);
      this.endWaiters(this.finalError);
    }
    await this.done;
    if (this.state !== 'failed') this.state = state;
  }

  private async run(): Promise<void> {
    let failingSince: number | null = null;
    let backoff = MIN_BACKOFF_MS;
    while (!this.stop.signal.aborted) {
      const cycle = new AbortController();
      const onStop = () => cycle.abort();
      this.stop.signal.addEventListener('abort', onStop, { once: true });
      try {
        const position = await streamPosition(this.config.connection, this.config.stream, this.config.subject);
        const start = await this.startFrom(position);
        this.state = 'shipping';
        await this.pump(position, start, cycle, () => {
          failingSince = null;
          backoff = MIN_BACKOFF_MS;
        });
      } catch (error) {
        cycle.abort();
        if (this.stop.signal.aborted) break;
        const failure = asShipperError(error);
        this.lastError = failure;
        if (isFatal(failure)) {
          this.fail(failure);
          return;
        }
        failingSince ??= Date.now();
        this.state = Date.now() - failingSince > this.config.retryBudgetMs ? 'stalled' : 'retrying';
        await sleep(backoff, this.stop.signal);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      } finally {
        this.stop.signal.removeEventListener('abort', onStop);
      }
    }
  }

  /**
   * Checks the stream's position against this log and against what the
   * shipper believes was acknowledged, and says where to read from.
   */
  private async startFrom(position: StreamPosition): Promise<{ resume: ResumePoint }> {
    const { last } = position;
    if (last === null && position.messages > 0) {
      throw new WalError(
        'WAL_REPLICATION_CONFLICT',
        `stream ${this.config.stream.name} holds messages of other subjects than ${this.config.subject}: give each log a stream of its own (the chain is checked against the whole stream)`,
      );
    }
    if (last !== null && last.logId !== this.config.logId) {
      throw new WalError(
        'WAL_REPLICATION_CONFLICT',
        `subject ${this.config.subject} of stream ${this.config.stream.name} carries log ${last.logId}, not this log (${this.config.logId}): give each log its own subject and stream`,
      );
    }
    if (this.removals !== null && holeSince(this.removals, position)) {
      throw new WalError(
        'WAL_REPLICATION_DIVERGED',
        `stream ${this.config.stream.name} lost messages before its last one (sequence ${position.seq}): removed since the shipper last looked, ` +
          'they leave a hole in the chain that shipping after its end cannot fill; a follower of it stops there. Purge the stream to ship the log again whole',
      );
    }
    this.removals = removalsAt(position);
    const streamHolds = completeUpTo(last);
    const end = await this.source.endLsn();
    if (streamHolds > end) {
      throw new WalError(
        'WAL_REPLICATION_DIVERGED',
        `stream ${this.config.stream.name} holds this log's transactions up to commit LSN ${streamHolds}, but the local log ends at LSN ${end}: ` +
          'the local log is not the one that was shipped (restored from an older copy?); refusing to ship a different history under the same LSNs',
      );
    }
    if (this.acked !== null && streamHolds < this.acked.commitLsn) {
      // The stream lost messages it had acknowledged (a restored or purged
      // stream, a replica that missed a write): ship them again while the
      // local log still holds them; reading from there refuses if it does not.
      this.divergences++;
      this.lastError = new WalError(
        'WAL_REPLICATION_DIVERGED',
        `stream ${this.config.stream.name} holds commits up to ${streamHolds}, below the ${this.acked.commitLsn} it acknowledged; shipping them again from the local log`,
      );
    }
    this.acked = last === null ? null : { commitLsn: streamHolds, seq: position.seq, msgId: last.msgId };
    // What the stream holds is acknowledged whoever published it: a waiter for a commit an earlier
    // shipper stored would otherwise wait for a publish that never comes, and retention would keep it.
    if (last !== null) this.source.acknowledged(last.resume);
    this.resolveWaiters(streamHolds);
    this.unacked.clear(); // read again from the stream's position
    if (position.resume !== null) return { resume: position.resume };
    // An empty subject: from where this shipper first began, if it began on one (the stream was purged), else from the log's default start.
    this.origin ??= await this.source.start();
    return { resume: this.origin };
  }

  private async pump(position: StreamPosition, start: { resume: ResumePoint }, cycle: AbortController, onAck: () => void): Promise<void> {
    const builder = new MessageBuilder(this.config.logId, this.config.maxBody, { ...position, resume: start.resume });
    const iterator = this.source.read(start.resume, cycle.signal)[Symbol.asyncIterator]();
    // Acknowledgements are taken in publish order, as they come; the first
    // failure ends the cycle (the reader stops), and the stream is asked again.
    let acks: Promise<void> = Promise.resolve();
    const window: Array<Promise<void>> = [];
    let failure: unknown = null;
    const stopCycle = (error: unknown) => {
      failure ??= error;
      cycle.abort();
    };
    // The expectations do not refuse a publish after a purge or a delete (the stream keeps its last id): look.
    const { removed } = removalsAt(position);
    const watch = setInterval(() => void this.watchRemovals(removed, stopCycle), REMOVAL_CHECK_MS);
    watch.unref();
    // Each message expects the stream's last sequence to be its predecessor's: the stream takes this
    // log's subject only and only the shipper appends, so the cycle's messages land at the sequences
    // after the one the stream had when asked (before its last message). Not expect.lastMsgID: nats-server
    // 2.9.10 checks it again on each replica that applies the message, and a replica restarted or
    // caught up does not know the last id, refuses every later message and stays behind for good while
    // reported current (docs/REPLICATION.md, "Exactly once"); a purge or a delete keeps the last id too.
    let nextSeq = position.lastSeq;
    const publish = async (message: WireMessage) => {
      while (window.length >= this.config.window) await window.shift();
      if (failure !== null) throw failure;
      const expect: PublishExpectation = { lastSequence: nextSeq++ };
      const ack = publishMessage(this.config.connection, this.config.subject, message.body, {
        headers: wireHeaders(message),
        msgID: message.msgId,
        expect,
        timeoutMs: this.config.publishTimeoutMs,
      });
      ack.catch(() => undefined); // taken in order below
      this.inFlight++;
      this.shippedCommitLsn = Math.max(this.shippedCommitLsn, completeUpTo(message));
      acks = acks.then(async () => {
        try {
          const { seq, duplicate } = await ack;
          if (duplicate) await this.confirmDuplicate(message, seq);
          this.noteAcknowledged(message, seq);
          onAck();
        } catch (error) {
          stopCycle(error);
        } finally {
          this.inFlight--;
        }
      });
      window.push(acks);
    };
    try {
      // A message goes out as soon as the source has nothing more ready, not when it is full. What the
      // source has read resolves in microtasks; once a turn of the event loop passes, it is waiting
      // for the disk or for new commits. The source hands over what one read found as one batch, so
      // the race with the turn is per batch, not per transaction.
      while (failure === null) {
        let next = iterator.next();
        const turn = nextTurn(undefined, { ref: false }).then(() => null);
        const ready = await Promise.race([next, turn]);
        if (ready === null) {
          const partial = builder.flush();
          if (partial !== null) await publish(partial);
        } else {
          next = Promise.resolve(ready);
        }
        const step = await next;
        if (step.done === true) break;
        const readAt = Date.now();
        const onPiece: OnPiece = (commitLsn, transactions, bytes) => this.unacked.add(commitLsn, bytes, readAt, transactions);
        for (const item of step.value) {
          this.sourceCommitLsn = Math.max(this.sourceCommitLsn, item.commitLsn);
          let messages: readonly WireMessage[];
          if (isCommitRun(item)) {
            messages = builder.addRun(item, onPiece);
          } else {
            this.unacked.add(item.commitLsn, encodedSize(item), readAt, 1);
            messages = builder.add(item);
          }
          for (const message of messages) await publish(message);
        }
      }
    } finally {
      clearInterval(watch);
      // Left suspended, the reader never runs its finally (a directory watch, the in-process copy of recent
      // writes, open segments stay), one more each cycle. A next() in flight settles once its wait sees the
      // abort, and return() runs after it; its own failure counts only when the cycle has none.
      cycle.abort();
      try {
        await iterator.return?.(undefined);
      } catch (error) {
        stopCycle(error);
      }
      await acks;
    }
    if (failure !== null) throw failure;
  }

  /**
   * A duplicate ack names the sequence of the first message stored under its
   * id, and the stream checks ids before expectations: within its duplicate
   * window it acknowledges a message whose id it remembers even when that
   * message was purged or deleted since, and stores nothing. The ack counts
   * only when the stream still holds this very message there (same id, same
   * predecessor): the lost ack of a publish that was stored.
   */
  private async confirmDuplicate(message: WireMessage, seq: number): Promise<void> {
    const stored = await messageAt(this.config.connection, this.config.stream, seq);
    const headers = wireHeaders(message);
    if (stored?.headers[HEADER.msgId] === message.msgId && stored.headers[HEADER.previous] === headers[HEADER.previous]) return;
    throw new WalError(
      'WAL_REPLICATION',
      `stream ${this.config.stream.name} acknowledged message ${message.msgId} as a duplicate of sequence ${seq}, which no longer holds it: ` +
        'the duplicate window remembers the ids of removed messages and stores nothing under them; shipping again once it has passed',
    );
  }

  /** Ends the cycle when messages were removed from the stream since it began; the next cycle sees whether to ship them again. */
  private async watchRemovals(removedAtStart: number, stopCycle: (error: WalError) => void): Promise<void> {
    let removed: number;
    try {
      removed = await removedNow(this.config.connection, this.config.stream.name);
    } catch {
      return; // the publishes say what is wrong with the stream
    }
    if (removed === removedAtStart) return;
    stopCycle(
      new WalError(
        'WAL_REPLICATION',
        `stream ${this.config.stream.name} lost ${removed - removedAtStart} message(s) while shipping (purged or deleted); asking it where it stands`,
      ),
    );
  }

  private noteAcknowledged(message: WireMessage, seq: number): void {
    const commitLsn = completeUpTo(message);
    if (this.acked === null || commitLsn >= this.acked.commitLsn) this.acked = { commitLsn, seq, msgId: message.msgId };
    this.lastError = null;
    this.unacked.acknowledge(commitLsn);
    this.source.acknowledged(message.resume);
    this.resolveWaiters(commitLsn);
  }

  private resolveWaiters(commitLsn: number): void {
    const ready = this.waiters.filter((waiter) => waiter.lsn <= commitLsn);
    this.waiters = this.waiters.filter((waiter) => waiter.lsn > commitLsn);
    for (const waiter of ready) waiter.resolve();
  }

  private fail(error: WalError): void {
    this.state = 'failed';
    this.finalError = error;
    this.endWaiters(error);
    this.onFailure(error);
  }

  private endWaiters(error: WalError): void {
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }
}

/** What a failure means for shipping: the local log no longer holding what must be shipped is divergence. */
function asShipperError(error: unknown): WalError {
  if (!(error instanceof WalError)) return asReplicationError(error);
  if (error.code !== 'WAL_LSN_TRUNCATED') return error;
  return new WalError(
    'WAL_REPLICATION_DIVERGED',
    `the local log no longer holds transactions the stream lacks (${error.message}); shipping cannot go on without a hole`,
    { cause: error, lsn: error.lsn },
  );
}

/**
 * Failures retrying cannot mend: another log on the subject, a history that
 * differs, a log that lost what the stream needs, or damage in it (a follower
 * of a live log waits at a torn tail; anything else it refuses stays).
 */
function isFatal(error: WalError): boolean {
  return (
    LOG_DAMAGE_CODES.has(error.code) ||
    error.code === 'WAL_REPLICATION_DIVERGED' ||
    error.code === 'WAL_REPLICATION_MALFORMED' ||
    (error.code === 'WAL_REPLICATION_CONFLICT' && !('apiCode' in error)) ||
    error.code === 'WAL_POISONED' ||
    error.code === 'WAL_CLOSED'
  );
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
