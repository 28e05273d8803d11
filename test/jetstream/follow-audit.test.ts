import { describe, expect, it, vi } from 'vitest';
import { WalError } from '../../src/errors.js';
import { ensureStream, followStream, publishMessage, restoreFromStream } from '../../src/jetstream/index.js';
import { encodeTransaction, encodedSize, messageId, wireHeaders, type WireTransaction } from '../../src/jetstream/wire.js';
import { runCli } from '../helpers/cli.js';
import { committed } from '../helpers/copies.js';
import { streamSpec, useConnection } from '../helpers/jetstream.js';
import { useCluster } from '../helpers/nats-cluster.js';
import { tempDir } from '../helpers/temp-dir.js';

/*
 * What a follower does with a stream whose messages are not what a shipper
 * builds: each is crafted here (headers as the shipper writes them, CRC
 * right, chained), then published to a stream of its own on a real cluster,
 * and the stream restored or followed. Whatever is wrong must be refused
 * with a documented code, nothing of the bad message applied, and nothing
 * before it lost.
 */

/*
 * A read of the stream that fails after yielding some messages, as the real
 * one does when the server holding its consumer dies (docs/REPLICATION.md,
 * "What the 3.4 clients do on 2.9.10", Reads): armed by a test, once;
 * otherwise the real read.
 */
const readFault = vi.hoisted(() => ({ afterMessages: null as number | null, failed: 0 }));
vi.mock('../../src/jetstream/read.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/jetstream/read.js')>();
  return {
    ...original,
    async *readStream(...args: Parameters<typeof original.readStream>) {
      let yielded = 0;
      for await (const message of original.readStream(...args)) {
        yield message;
        if (readFault.afterMessages !== null && ++yielded >= readFault.afterMessages) {
          readFault.afterMessages = null;
          readFault.failed++;
          throw new WalError('WAL_REPLICATION', `read stream ${args[1].stream} stalled after sequence ${message.seq}: read again from sequence ${message.seq + 1}`);
        }
      }
    },
  };
});

const cluster = useCluster({ nodes: 3 });
const connection = useConnection(cluster);

const LOG_ID = '0123456789abcdef0123456789abcdef';

/** A transaction committed at `commitLsn` (begun there too), its events as text. */
function tx(commitLsn: number, ...events: string[]): WireTransaction {
  return { beginLsn: commitLsn, commitLsn, events: (events.length > 0 ? events : [`tx ${commitLsn}`]).map((event) => Buffer.from(event)) };
}

function encode(...txs: WireTransaction[]): Buffer {
  const body = Buffer.alloc(txs.reduce((sum, one) => sum + encodedSize(one), 0));
  let at = 0;
  for (const one of txs) at = encodeTransaction(body, at, one);
  return body;
}

/** A message as published: its body and the headers that describe it (which a test may make lie). */
interface Crafted {
  body: Buffer;
  commits: [number, number];
  chunk?: { offset: number; total: number };
  /** Default: the id its headers name. */
  msgId?: string;
  /** Default: the id of the message published before it (null for the first). */
  previous?: string | null;
}

/** A message holding `txs` whole, its headers naming them. */
function whole(...txs: WireTransaction[]): Crafted {
  return { body: encode(...txs), commits: [txs[0]!.commitLsn, txs.at(-1)!.commitLsn] };
}

/** The piece [from, to) of `one`'s encoding, as a chunk of it. */
function piece(one: WireTransaction, from: number, to: number): Crafted {
  const encoded = encode(one);
  return { body: encoded.subarray(from, to), commits: [one.commitLsn, one.commitLsn], chunk: { offset: from, total: encoded.length } };
}

function idOf(message: Crafted): string {
  const final = message.chunk === undefined || message.chunk.offset + message.body.length === message.chunk.total;
  return message.msgId ?? messageId(LOG_ID, message.commits[1], final ? null : message.chunk!.offset);
}

/** A stream of its own holding `messages` on one subject, chained one to the next unless a message says otherwise. */
async function craftedStream(name: string, messages: Crafted[]): Promise<string> {
  // Right after the cluster forms, on a loaded machine, the first stream's creation can time out: try again.
  for (let attempt = 1; ; attempt++) {
    try {
      await ensureStream(connection(), streamSpec(name));
      break;
    } catch (error) {
      if (attempt === 5 || !(error instanceof WalError) || error.code !== 'WAL_REPLICATION') throw error;
    }
  }
  let previous: string | null = null;
  for (const message of messages) {
    const msgId = idOf(message);
    const headers = wireHeaders({
      msgId,
      previous: message.previous === undefined ? previous : message.previous,
      logId: LOG_ID,
      firstCommitLsn: message.commits[0],
      lastCommitLsn: message.commits[1],
      resume: { fromLsn: message.commits[1] + 1, scanFromLsn: message.commits[1] + 1 },
      chunk: message.chunk ?? null,
      body: message.body,
    });
    const ack = await publishMessage(connection(), `${name}.log`, message.body, { headers, msgID: msgId });
    expect(ack.duplicate, `${name}: ${msgId} was stored`).toBe(false);
    previous = msgId;
  }
  return name;
}

async function restore(stream: string, dir: string, untilCommitLsn?: number) {
  return restoreFromStream({ servers: cluster().servers, stream, dir, untilCommitLsn });
}

/** The commit LSNs the replica in `dir` holds. */
async function commitsIn(dir: string): Promise<number[]> {
  return (await committed(dir)).map((one) => one.commitLsn);
}

/** How `done` settled within `ms`: the status it resolved with, the error it rejected with, or 'pending'. */
async function settledWithin<T>(done: Promise<T>, ms: number): Promise<T | unknown> {
  return Promise.race([
    done.then(
      (value) => value,
      (error: unknown) => error,
    ),
    new Promise((resolve) => setTimeout(() => resolve('pending'), ms)),
  ]);
}

describe('a message whose body and headers disagree', () => {
  it('a body that lacks transactions its Segwal-Commits names is refused, and nothing after it is applied over the hole', async () => {
    // Commits 3 and 4 are named by the header (and the message id), but the body holds only 2.
    const stream = await craftedStream('audit-lacks', [whole(tx(1)), { body: encode(tx(2)), commits: [2, 4] }, whole(tx(5))]);
    const replica = tempDir();
    await expect(restore(stream, replica)).rejects.toMatchObject({ code: 'WAL_REPLICATION_MALFORMED', message: expect.stringMatching(/message 2 of stream audit-lacks/) });
    expect(await commitsIn(replica)).toEqual([1]);
  });

  it('a body that holds more than its Segwal-Commits names is refused', async () => {
    const stream = await craftedStream('audit-more', [whole(tx(1)), { body: encode(tx(2), tx(3)), commits: [2, 2] }, whole(tx(3, 'the real 3'))]);
    const replica = tempDir();
    await expect(restore(stream, replica)).rejects.toMatchObject({ code: 'WAL_REPLICATION_MALFORMED' });
    expect(await commitsIn(replica)).toEqual([1]);
  });

  it('a body whose transactions are out of commit order is refused as malformed before any of them is applied', async () => {
    const stream = await craftedStream('audit-order', [whole(tx(1)), { body: encode(tx(2), tx(5), tx(4)), commits: [2, 4] }]);
    const replica = tempDir();
    await expect(restore(stream, replica)).rejects.toMatchObject({ code: 'WAL_REPLICATION_MALFORMED' });
    expect(await commitsIn(replica)).toEqual([1]);
  });

  it('a message that repeats a transaction of the message before it is refused, not skipped', async () => {
    const stream = await craftedStream('audit-repeat', [whole(tx(1), tx(2)), whole(tx(2, 'another 2'), tx(3))]);
    const replica = tempDir();
    await expect(restore(stream, replica)).rejects.toMatchObject({ code: 'WAL_REPLICATION_MALFORMED' });
    expect(await commitsIn(replica)).toEqual([1, 2]);
  });
});

describe('a chunked transaction', () => {
  const big = tx(3, 'a'.repeat(40), 'b'.repeat(40)); // 20 + 44 + 44 = 108 bytes

  it('whole in order is applied (the crafting is right)', async () => {
    const stream = await craftedStream('audit-chunks-ok', [whole(tx(1)), piece(big, 0, 50), piece(big, 50, 100), piece(big, 100, 108), whole(tx(4))]);
    const replica = tempDir();
    expect(await restore(stream, replica)).toMatchObject({ state: 'stopped', appliedCommitLsn: 4 });
    expect(await committed(replica)).toEqual([
      { beginLsn: 1, commitLsn: 1, events: ['tx 1'] },
      { beginLsn: 3, commitLsn: 3, events: ['a'.repeat(40), 'b'.repeat(40)] },
      { beginLsn: 4, commitLsn: 4, events: ['tx 4'] },
    ]);
  });

  it('left unfinished by a new chunked transaction is refused, not dropped', async () => {
    const next = tx(5, 'c'.repeat(60));
    const stream = await craftedStream('audit-chunk-restart', [whole(tx(1)), piece(big, 0, 50), piece(next, 0, 30), piece(next, 30, encode(next).length)]);
    const replica = tempDir();
    await expect(restore(stream, replica)).rejects.toMatchObject({ code: 'WAL_REPLICATION_MALFORMED' });
    expect(await commitsIn(replica)).toEqual([1]);
  });

  it('left unfinished by a whole message is refused, not dropped', async () => {
    const stream = await craftedStream('audit-chunk-cut', [whole(tx(1)), piece(big, 0, 50), whole(tx(5))]);
    const replica = tempDir();
    await expect(restore(stream, replica)).rejects.toMatchObject({ code: 'WAL_REPLICATION_MALFORMED' });
    expect(await commitsIn(replica)).toEqual([1]);
  });

  it('whose pieces disagree on its total is refused, though the pieces join into a transaction', async () => {
    // The first piece is the LSNs of a 108-byte encoding; the second finishes a 36-byte one of the same transaction.
    const short = tx(3, 'x'.repeat(12)); // 20 + 16 = 36 bytes
    const stream = await craftedStream('audit-chunk-total', [whole(tx(1)), piece(big, 0, 16), piece(short, 16, 36)]);
    const replica = tempDir();
    await expect(restore(stream, replica)).rejects.toMatchObject({ code: 'WAL_REPLICATION_MALFORMED' });
    expect(await commitsIn(replica)).toEqual([1]);
  });

  it('whose pieces belong to different transactions is refused, though they join into one', async () => {
    const other = tx(5, 'a'.repeat(40), 'b'.repeat(40)); // the same length as `big`
    const stream = await craftedStream('audit-chunk-commit', [whole(tx(1)), piece(big, 0, 50), piece(other, 50, 108), whole(tx(6))]);
    const replica = tempDir();
    await expect(restore(stream, replica)).rejects.toMatchObject({ code: 'WAL_REPLICATION_MALFORMED' });
    expect(await commitsIn(replica)).toEqual([1]);
  });

  it('a piece that runs past the total its header gives is refused', async () => {
    // A "piece" of transaction 3 at 0 of 36 bytes carrying 72: transactions 3 and 4.
    const three = tx(3, 'x'.repeat(12));
    const stream = await craftedStream('audit-chunk-past', [whole(tx(1)), { body: encode(three, tx(4, 'y'.repeat(12))), commits: [3, 3], chunk: { offset: 0, total: 36 } }]);
    const replica = tempDir();
    await expect(restore(stream, replica)).rejects.toMatchObject({ code: 'WAL_REPLICATION_MALFORMED' });
    expect(await commitsIn(replica)).toEqual([1]);
  });
});

describe('untilCommitLsn', () => {
  it('between two commits: a live follower ends once it meets the commit after it, having applied every one at or below it', async () => {
    const stream = await craftedStream('audit-until-gap', [whole(tx(1)), whole(tx(3)), whole(tx(5)), whole(tx(6), tx(8), tx(10))]);
    const replica = tempDir();
    const follower = await followStream({ servers: cluster().servers, stream, dir: replica, untilCommitLsn: 4 });
    const ended = await settledWithin(follower.done, 10_000);
    if (ended === 'pending') await follower.close();
    expect(ended).toMatchObject({ state: 'stopped', appliedCommitLsn: 3 });
    expect(await commitsIn(replica)).toEqual([1, 3]);

    // Inside a message: the same.
    const inside = await followStream({ servers: cluster().servers, stream, dir: tempDir(), untilCommitLsn: 9 });
    const insideEnded = await settledWithin(inside.done, 10_000);
    if (insideEnded === 'pending') await inside.close();
    expect(insideEnded).toMatchObject({ state: 'stopped', appliedCommitLsn: 8 });
  });

  it('beyond the end of the stream: a restore says it did not get there instead of reporting a restore', async () => {
    const stream = await craftedStream('audit-until-beyond', [whole(tx(1)), whole(tx(3))]);
    const replica = tempDir();
    await expect(restore(stream, replica, 10)).rejects.toMatchObject({ code: 'WAL_REPLICATION', message: expect.stringMatching(/untilCommitLsn 10/) });
    // What it did apply is there, and a restore to the stream's end, or to a bound the stream holds, succeeds.
    expect(await commitsIn(replica)).toEqual([1, 3]);
    expect(await restore(stream, replica)).toMatchObject({ state: 'stopped', appliedCommitLsn: 3 });
    expect(await restore(stream, tempDir(), 3)).toMatchObject({ state: 'stopped', appliedCommitLsn: 3 });
  });

  it('beyond the end of the stream: segwal restore exits 2 saying so, not 0 with "restored"', async () => {
    const stream = await craftedStream('audit-until-cli', [whole(tx(1)), whole(tx(3))]);
    const replica = tempDir();
    const run = await runCli('restore', replica, '--servers', cluster().servers.join(','), '--stream', stream, '--until-commit-lsn', '10');
    expect(run).toMatchObject({ code: 2, stdout: '' });
    expect(run.stderr).toMatch(/^segwal restore: WAL_REPLICATION: stream audit-until-cli ends \(at sequence 2\) before untilCommitLsn 10: [^\n]+ up to commit LSN 3, [^\n]+\n$/);
    expect(await commitsIn(replica)).toEqual([1, 3]);
  });
});

describe('a read that can never succeed', () => {
  it('a maxBytesInFlight below the largest message the stream may hold is refused, instead of a restore retrying such a message for ever', async () => {
    const stream = await craftedStream('audit-too-large', [whole(tx(1)), whole(tx(2, 'z'.repeat(300)))]);
    const replica = tempDir();
    const ended = await settledWithin(restoreFromStream({ servers: cluster().servers, stream, dir: replica, maxBytesInFlight: 100 }), 10_000);
    expect(ended).toMatchObject({ code: 'WAL_INVALID_OPTIONS', message: expect.stringMatching(/maxBytesInFlight/) });
    // The stream's max_msg_size (1 MiB here) is enough.
    expect(await restoreFromStream({ servers: cluster().servers, stream, dir: replica, maxBytesInFlight: 1024 * 1024 })).toMatchObject({ appliedCommitLsn: 2 });
  });
});

describe('a read that fails after some messages (the consumer lost with its server)', () => {
  it('a restore reads again from the first message not applied, and ends whole: no false divergence', async () => {
    const stream = await craftedStream('audit-read-fails', [whole(tx(1)), whole(tx(2), tx(3)), whole(tx(4)), whole(tx(5))]);
    const replica = tempDir();
    readFault.afterMessages = 2;
    readFault.failed = 0;
    const status = await restore(stream, replica);
    expect(readFault.failed).toBe(1);
    expect(status).toMatchObject({ state: 'stopped', appliedCommitLsn: 5, streamSeq: 4 });
    expect(await commitsIn(replica)).toEqual([1, 2, 3, 4, 5]);
  });

  it('a live follower goes on after it, through a chunked transaction read in two reads', async () => {
    const big = tx(3, 'a'.repeat(40), 'b'.repeat(40));
    const stream = await craftedStream('audit-read-fails-live', [whole(tx(1)), piece(big, 0, 50), piece(big, 50, 108), whole(tx(4))]);
    const replica = tempDir();
    readFault.afterMessages = 2;
    readFault.failed = 0;
    const follower = await followStream({ servers: cluster().servers, stream, dir: replica });
    follower.done.catch(() => undefined); // a failure shows in the status polled
    await expect.poll(() => follower.status(), { timeout: 10_000 }).toMatchObject({ state: 'following', appliedCommitLsn: 4 });
    const status = await follower.close();
    expect(readFault.failed).toBe(1);
    expect(status).toMatchObject({ state: 'stopped', appliedCommitLsn: 4 });
    expect(await committed(replica)).toEqual([
      { beginLsn: 1, commitLsn: 1, events: ['tx 1'] },
      { beginLsn: 3, commitLsn: 3, events: ['a'.repeat(40), 'b'.repeat(40)] },
      { beginLsn: 4, commitLsn: 4, events: ['tx 4'] },
    ]);
  });
});
