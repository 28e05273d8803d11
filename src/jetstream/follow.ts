import { z } from 'zod';
import { WalError } from '../errors.js';
import { RecordKind } from '../format/constants.js';
import { replicatedPayload } from '../format/frame.js';
import { checkDirArgument, invalidOptions, syncOptionSchema } from '../options.js';
import { readWal } from '../readers.js';
import { Wal } from '../wal.js';
import { connectJetStream, type JetStreamConnection } from './connect.js';
import { asReplicationError } from './errors.js';
import { firstMessageOnSubject } from './get-message.js';
import type { StoredMessage } from './message.js';
import { readStream } from './read.js';
import { describeStream } from './stream.js';
import { messageTransactions, parseWireMessage, type WireMessage, type WireTransaction } from './wire.js';

/*
 * The other end of shipping (docs/REPLICATION.md, "Following and
 * restoring"): a replica, a segwal log in a directory of its own, rebuilt
 * from the stream by applying whole transactions in order at the source's
 * LSNs (Replicated records, docs/FORMAT.md). Every message is checked (its
 * CRC, its ids, its log id, its place in the chain); a chunked transaction
 * is applied once whole. After a crash the replica resumes from its own log:
 * its last record names the stream sequence that carried it.
 */

const followSchema = z.strictObject({
  servers: z.array(z.string().min(1)).min(1),
  stream: z.string().min(1),
  /** The log's subject; default: the subject of the stream's first message. */
  subject: z.string().min(1).optional(),
  dir: z.string().min(1),
  /** Ends following (normally). */
  signal: z.instanceof(AbortSignal).optional(),
  /** Stop after the transaction committed at this LSN (a restore to a point in time). */
  untilCommitLsn: z.number().int().min(1).optional(),
  /** The replica's own durability. Default group, 50 ms. */
  sync: syncOptionSchema.optional(),
  io: z.enum(['native', 'js']).optional(),
  /**
   * Bytes the server may send ahead of the replica: at least the largest message the stream may hold (its
   * max_msg_size, or the server's max_payload), which a smaller budget could never read. Default 4 × the server's max_payload.
   */
  maxBytesInFlight: z.number().int().positive().optional(),
});

export type FollowOptions = z.input<typeof followSchema>;

/** How far behind its stream a replica is. */
export interface FollowerStatus {
  state: 'following' | 'retrying' | 'stopped' | 'failed';
  logId: string;
  /** Every transaction committed at or below it is applied (durable per the replica's sync mode). */
  appliedCommitLsn: number;
  /** The stream sequence of the last message applied. */
  streamSeq: number;
  /** Messages in the stream after it (as of the last look at the stream). */
  pending: number;
  /** Between the last applied message's storing in the stream and its applying here, in ms. */
  lagMs: number;
  lastError: string | null;
}

export interface FollowerHandle {
  status(): FollowerStatus;
  /** Resolves when following ends: `signal` aborted, `close()`, or `untilCommitLsn` reached; rejects on a failure it cannot retry. */
  readonly done: Promise<FollowerStatus>;
  /** Stops following and closes the replica. */
  close(): Promise<FollowerStatus>;
}

const RETRY_MS = 250;
const PENDING_REFRESH_MS = 1_000;

/** Follows `stream` into the replica in `dir`, live, until `signal` aborts or `close()`. */
export async function followStream(options: FollowOptions): Promise<FollowerHandle> {
  return startFollowing(parseFollowOptions(options), 'live');
}

/**
 * Rebuilds the log in `dir` from `stream`, up to the stream's end (as it is
 * now) or `untilCommitLsn`, then closes it. `dir` is empty, or a replica of
 * the same log (the restore goes on from where it stands).
 */
export async function restoreFromStream(options: Omit<FollowOptions, 'signal'>): Promise<FollowerStatus> {
  const follower = await startFollowing(parseFollowOptions(options), 'to the end');
  return follower.done;
}

function parseFollowOptions(options: FollowOptions): z.output<typeof followSchema> {
  const parsed = followSchema.safeParse(options, { reportInput: true });
  if (!parsed.success) throw invalidOptions(parsed.error.issues, 'invalid followStream() options');
  return { ...parsed.data, dir: checkDirArgument(parsed.data.dir, 'followStream') };
}

async function startFollowing(given: z.output<typeof followSchema>, until: 'live' | 'to the end'): Promise<FollowerHandle> {
  const connection = await connectJetStream({ servers: given.servers, name: `segwal follower of ${given.stream}`, reconnect: { maxAttempts: -1, waitMs: 250 } });
  try {
    const origin = await chainOrigin(connection, given.stream, given.subject);
    // A message larger than the budget fails every read of it, and retrying would never end.
    const largest = Math.min(connection.maxPayload, origin.maxMsgSize > 0 ? origin.maxMsgSize : Number.POSITIVE_INFINITY);
    if (given.maxBytesInFlight !== undefined && given.maxBytesInFlight < largest) {
      throw new WalError(
        'WAL_INVALID_OPTIONS',
        `invalid followStream() options: option \`maxBytesInFlight\`: ${given.maxBytesInFlight} bytes is less than the largest message stream ${given.stream} ` +
          `may hold (${largest} bytes: its max_msg_size or the server's max_payload), which could never be read`,
      );
    }
    const { wal } = await Wal.open({
      dir: given.dir,
      replica: true,
      logId: origin.logId,
      sync: given.sync ?? 'group',
      io: given.io ?? 'native',
    }).catch((error: unknown) => {
      if (error instanceof WalError && /logId/.test(error.message)) {
        throw new WalError('WAL_REPLICATION_CONFLICT', `stream ${given.stream} carries log ${origin.logId}; ${error.message}`, { cause: error });
      }
      throw error;
    });
    const follower = new Follower(connection, wal, origin, given, until);
    return follower.handle();
  } catch (error) {
    await connection.close();
    throw error;
  }
}

/** The log a stream carries: its id and subject, from the first message on the subject (or of the stream). */
async function chainOrigin(
  connection: JetStreamConnection,
  stream: string,
  subject: string | undefined,
): Promise<{ logId: string; subject: string; firstSeq: number; maxMsgSize: number }> {
  const { config, state } = await describeStream(connection, stream);
  if (state.messages === 0) {
    throw new WalError('WAL_REPLICATION', `stream ${stream} holds no message yet: there is nothing to follow (start after the shipper has shipped)`);
  }
  const first = await firstMessageOnSubject(connection, config, subject ?? '>', state.first_seq);
  if (first === null) throw new WalError('WAL_REPLICATION', `stream ${stream} holds no message on ${subject ?? 'any subject'}`);
  const message = parseWireMessage(first.headers, first.data, `message ${first.seq} of stream ${stream}`);
  if (message.previous !== null) {
    throw new WalError(
      'WAL_REPLICATION_DIVERGED',
      `stream ${stream} starts at message ${first.seq}, which continues a chain whose start is gone (the stream lost its first messages); a replica cannot be built from it`,
    );
  }
  return { logId: message.logId, subject: first.subject, firstSeq: first.seq, maxMsgSize: config.max_msg_size ?? -1 };
}

class Follower {
  private state: FollowerStatus['state'] = 'following';
  private appliedCommitLsn: number;
  private streamSeq = 0;
  private pending = 0;
  private lagMs = 0;
  private lastError: WalError | null = null;
  private readonly stop = new AbortController();
  private readonly done: Promise<FollowerStatus>;
  /** The id of the last message applied in this session; null until one is (or on resuming). */
  private previousId: string | null | undefined = undefined;
  /** The last commit LSN the message before names: the next one's transactions come after it. */
  private previousLastCommitLsn = 0;
  /** The message before was a piece of this transaction, short of its last: the next message is its next piece. */
  private unfinished: { commitLsn: number; total: number; nextOffset: number } | null = null;
  private chunks: Buffer[] = [];
  /** The first stream sequence not read yet: where a read that failed goes on from. */
  private nextSeq = 0;
  /** A transaction committed after `untilCommitLsn` was met: every one at or below it is applied. */
  private passedUntil = false;
  /** The replica's Wal was poisoned (a failed write or fsync in the background): following ends with it. */
  private walFailure: WalError | null = null;

  constructor(
    private readonly connection: JetStreamConnection,
    private readonly wal: Wal<Uint8Array, Buffer>,
    private readonly origin: { logId: string; subject: string; firstSeq: number },
    private readonly given: z.output<typeof followSchema>,
    private readonly until: 'live' | 'to the end',
  ) {
    this.appliedCommitLsn = wal.nextLsn - 1;
    // A signal aborted while following started (connecting, opening the replica) counts too.
    if (given.signal?.aborted === true) this.stop.abort();
    else given.signal?.addEventListener('abort', () => this.stop.abort(), { once: true });
    // Heard at once, not at the next message's commit, which on a quiet stream may never come.
    wal.on('failure', (error) => {
      this.walFailure ??= error;
      this.stop.abort();
    });
    this.done = this.run();
  }

  handle(): FollowerHandle {
    return {
      status: () => this.status(),
      done: this.done,
      close: async () => {
        this.stop.abort();
        return this.done.catch(() => this.status());
      },
    };
  }

  private status(): FollowerStatus {
    return {
      state: this.state,
      logId: this.origin.logId,
      appliedCommitLsn: this.appliedCommitLsn,
      streamSeq: this.streamSeq,
      pending: this.pending,
      lagMs: this.lagMs,
      lastError: this.lastError?.message ?? null,
    };
  }

  private async run(): Promise<FollowerStatus> {
    let failure: WalError | null = null;
    try {
      await this.follow();
    } catch (error) {
      failure = asReplicationError(error);
    }
    const closeFailure = await this.wal.close().then(() => null, (error: unknown) => error as WalError);
    await this.connection.close();
    if (closeFailure !== null) {
      // A replica that did not close cleanly may lack its last transactions on disk: following did not succeed.
      if (failure === null) failure = closeFailure;
      // A poisoned replica's close reports that same poisoning again; any other failure of it is news.
      else if (failure.code !== 'WAL_POISONED') {
        process.emitWarning(`segwal/jetstream: closing the replica in ${this.wal.dir} failed too: ${closeFailure.message}`, { code: 'SEGWAL_REPLICA_CLOSE_FAILED' });
      }
    }
    if (failure !== null) {
      this.state = 'failed';
      this.lastError = failure;
      throw failure;
    }
    this.state = 'stopped';
    return this.status();
  }

  /** Reads and applies until stopped or at the end; throws what ends following otherwise. */
  private async follow(): Promise<void> {
    this.nextSeq = await this.resumeSeq();
    const endSeq = this.until === 'to the end' ? (await describeStream(this.connection, this.given.stream)).state.last_seq : Number.POSITIVE_INFINITY;
    const refresh = setInterval(() => void this.refreshPending(), PENDING_REFRESH_MS);
    refresh.unref();
    try {
      while (!this.stop.signal.aborted && this.nextSeq <= endSeq) {
        try {
          await this.readFrom(endSeq);
          this.state = 'following';
        } catch (error) {
          const failure = asReplicationError(error);
          if (failure.code !== 'WAL_REPLICATION') throw failure;
          // The stream's consumer or leader went away: read again from the first message not applied (nextSeq),
          // not from where the failed read started: the messages it applied would be met again as a broken chain.
          this.lastError = failure;
          this.state = 'retrying';
          await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
        }
      }
    } finally {
      clearInterval(refresh);
    }
    if (this.walFailure !== null) throw this.walFailure;
    const until = this.given.untilCommitLsn;
    if (this.until === 'to the end' && until !== undefined && !this.reachedUntil()) {
      // The stream ended before the bound: what the source committed up to it may not be shipped yet.
      throw new WalError(
        'WAL_REPLICATION',
        `stream ${this.given.stream} ends (at sequence ${endSeq}) before untilCommitLsn ${until}: the replica in ${this.wal.dir} holds every ` +
          `transaction up to commit LSN ${this.appliedCommitLsn}, not every one up to ${until}; restore again once the stream holds it`,
      );
    }
  }

  /** The stream sequence to read from: the one that carried the replica's last record, or the chain's start. */
  private async resumeSeq(): Promise<number> {
    if (this.appliedCommitLsn === 0) return this.origin.firstSeq;
    for await (const record of readWal(this.wal.dir, { fromLsn: this.appliedCommitLsn })) {
      if (record.kind !== RecordKind.Replicated || record.lsn !== this.appliedCommitLsn) continue;
      return replicatedPayload(record.payload).streamSeq;
    }
    return this.origin.firstSeq;
  }

  /** Reads and applies messages from `nextSeq`, moving it past each one applied, until the read ends. */
  private async readFrom(endSeq: number): Promise<void> {
    const maxBytesInFlight = this.given.maxBytesInFlight ?? 4 * Math.max(this.connection.maxPayload, 1024 * 1024);
    const fromSeq = this.nextSeq;
    const reading = new AbortController();
    const onStop = () => reading.abort();
    this.stop.signal.addEventListener('abort', onStop, { once: true });
    try {
      for await (const stored of readStream(this.connection, { stream: this.given.stream, fromSeq, maxBytesInFlight, signal: reading.signal })) {
        if (stored.subject === this.origin.subject) await this.apply(stored);
        this.nextSeq = stored.seq + 1;
        // Reading again after a failure: a live read never ends, so this is where retrying is over.
        this.state = 'following';
        if (stored.seq >= endSeq || this.reachedUntil()) {
          reading.abort();
          this.stop.abort();
        }
      }
    } finally {
      this.stop.signal.removeEventListener('abort', onStop);
    }
  }

  private reachedUntil(): boolean {
    // The bound need not be a commit LSN: meeting the first commit after it says every one at or below it is applied.
    return this.given.untilCommitLsn !== undefined && (this.appliedCommitLsn >= this.given.untilCommitLsn || this.passedUntil);
  }

  private async apply(stored: StoredMessage): Promise<void> {
    const where = `message ${stored.seq} of stream ${this.given.stream}`;
    const message = parseWireMessage(stored.headers, stored.data, where);
    this.checkChain(message, stored.seq, where);
    // Past the commit a restore stops at (read ahead before the read ended): checked, not applied, so the status still names the last message applied.
    if (this.given.untilCommitLsn !== undefined && message.firstCommitLsn > this.given.untilCommitLsn) {
      this.passedUntil = true;
      return;
    }
    // Applied before a crash (the message a resume starts at, a piece of a transaction already whole here): only its place in the chain counts.
    const body = message.lastCommitLsn <= this.appliedCommitLsn ? null : this.joined(message, where);
    if (body !== null) {
      const appends: Array<Promise<unknown>> = [];
      let appended = this.appliedCommitLsn;
      // Checked whole against the headers before any of it is applied.
      for (const tx of messageTransactions(message, body, where)) {
        if (tx.commitLsn <= this.appliedCommitLsn) continue; // applied before a crash, or before this message was shipped again
        if (this.given.untilCommitLsn !== undefined && tx.commitLsn > this.given.untilCommitLsn) {
          this.passedUntil = true;
          break;
        }
        appends.push(this.wal.appendReplicated(tx as WireTransaction, stored.seq));
        appended = tx.commitLsn;
      }
      // Every append's rejection is heard, not only the last one's.
      await Promise.all(appends);
      // Applied once the replica took it, not when it was handed over: status() must not run ahead of what a kill leaves.
      this.appliedCommitLsn = appended;
      // The lag of what was applied now (not of a message re-read on resuming, applied long ago).
      if (appends.length > 0) this.lagMs = Math.max(0, Date.now() - stored.time.getTime());
    }
    this.streamSeq = stored.seq;
    this.pending = Math.max(0, this.pending - 1);
  }

  /**
   * Every message names the one before it: a break means the stream changed
   * under the replica. The first message after a resume is the one that
   * carried the replica's last record, so it must still carry it. After
   * that, each message goes on from the one before: the next piece of a
   * transaction left unfinished, or else transactions committed after it.
   */
  private checkChain(message: WireMessage, seq: number, where: string): void {
    if (message.logId !== this.origin.logId) {
      throw new WalError('WAL_REPLICATION_CONFLICT', `${where} belongs to log ${message.logId}, not ${this.origin.logId}`);
    }
    this.checkLink(message, seq, where);
    this.previousId = message.msgId;
    this.previousLastCommitLsn = message.lastCommitLsn;
    const chunk = message.chunk;
    this.unfinished =
      chunk !== null && chunk.offset + message.body.length < chunk.total
        ? { commitLsn: message.lastCommitLsn, total: chunk.total, nextOffset: chunk.offset + message.body.length }
        : null;
  }

  private checkLink(message: WireMessage, seq: number, where: string): void {
    if (this.previousId === undefined) {
      const resumed = this.appliedCommitLsn > 0;
      const carries = message.firstCommitLsn <= this.appliedCommitLsn && this.appliedCommitLsn <= message.lastCommitLsn;
      const starts = seq === this.origin.firstSeq && message.previous === null;
      // A chain shipped anew (after a purge) goes on from the replica only if it begins at or before the
      // replica's last commit: one that begins later lacks what the source committed in between.
      const startsBefore = starts && message.firstCommitLsn <= this.appliedCommitLsn;
      if (resumed ? !carries && !startsBefore : !starts) {
        throw new WalError(
          'WAL_REPLICATION_DIVERGED',
          `${where} does not carry commit LSN ${this.appliedCommitLsn}, the replica's last: the stream changed under the replica (shipped again after a divergence?); rebuild the replica`,
        );
      }
      return;
    }
    if (message.previous !== this.previousId) {
      throw new WalError(
        'WAL_REPLICATION_DIVERGED',
        `${where} follows message ${String(message.previous)}, not ${this.previousId}: the chain is broken (the stream changed under the replica)`,
      );
    }
    const unfinished = this.unfinished;
    const chunk = message.chunk;
    if (unfinished !== null) {
      if (chunk === null || message.lastCommitLsn !== unfinished.commitLsn || chunk.offset !== unfinished.nextOffset || chunk.total !== unfinished.total) {
        throw new WalError(
          'WAL_REPLICATION_MALFORMED',
          `${where} is not a segwal message: it does not go on with transaction ${unfinished.commitLsn}, of which ${unfinished.nextOffset} ` +
            `of ${unfinished.total} bytes came before it (it is ${chunk === null ? 'no piece' : `a piece at ${chunk.offset} of ${chunk.total} bytes`} of commit ${message.lastCommitLsn})`,
        );
      }
    } else if (message.firstCommitLsn <= this.previousLastCommitLsn || (chunk !== null && chunk.offset !== 0)) {
      throw new WalError(
        'WAL_REPLICATION_MALFORMED',
        `${where} is not a segwal message: it starts at commit ${message.firstCommitLsn}${chunk === null ? '' : `, offset ${chunk.offset}`}, ` +
          `but the message before it ended with commit ${this.previousLastCommitLsn}`,
      );
    }
  }

  /** A whole body: the message's own, or a chunked transaction's once its last piece is in; null until then. */
  private joined(message: WireMessage, where: string): Buffer | null {
    // checkChain saw to it that pieces come in order, one transaction at a time.
    if (message.chunk === null) return Buffer.from(message.body);
    const have = this.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    if (message.chunk.offset !== have) {
      throw new WalError('WAL_REPLICATION_MALFORMED', `${where} is a piece at offset ${message.chunk.offset}, but ${have} bytes came before it`);
    }
    this.chunks.push(Buffer.from(message.body));
    if (message.chunk.offset + message.body.length < message.chunk.total) return null;
    const whole = Buffer.concat(this.chunks);
    this.chunks = [];
    return whole;
  }

  private async refreshPending(): Promise<void> {
    try {
      const { state } = await describeStream(this.connection, this.given.stream);
      this.pending = Math.max(0, state.last_seq - this.streamSeq);
    } catch {
      // Only a figure for status(); the next look may get it.
    }
  }
}
