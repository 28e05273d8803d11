import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Wal, WalError } from '../../src/index.js';
import { describeStream, followStream, restoreFromStream, ship, shipDirectory, type FollowerHandle, type ShipOptions } from '../../src/jetstream/index.js';
import { committed, expectPrefixOf, expectSameTransactions } from '../helpers/copies.js';
import { useConnection } from '../helpers/jetstream.js';
import { useCluster } from '../helpers/nats-cluster.js';
import { mulberry32, testSeed } from '../helpers/random.js';
import { readShipped } from '../helpers/shipped.js';
import { tempDir } from '../helpers/temp-dir.js';
import { keepCommitting } from '../helpers/writer.js';

/*
 * A stream behind what it acknowledged (issue 14): purged, or its last
 * messages deleted, after the shipper was told they were stored. The shipper
 * ships them again from its local log while the log still holds them, and
 * stops with WAL_REPLICATION_DIVERGED once truncation took them; a follower
 * whose stream changed under it stops with WAL_REPLICATION_DIVERGED.
 *
 * What nats-server 2.9.10 does here (measured, docs/REPLICATION.md): a purge
 * or a delete keeps the stream's last sequence and last message id, so a
 * publish expecting the old last id is stored after the hole; and the
 * duplicate window still remembers the ids of removed messages, so a message
 * shipped again under the same id within it is acknowledged as a duplicate
 * and not stored. The streams here get a duplicate window of a few seconds:
 * shipping again meets it, and waits it out rather than the default two
 * minutes.
 */

const cluster = useCluster({ nodes: 3 });
const connection = useConnection(cluster);

/** Longer than it takes the shipper to notice a removal, so that shipping again meets the window. */
const DUPLICATE_WINDOW_MS = 3_000;
/** Waits on the shipper: noticing a removal, the duplicate window passing, the backoff. */
const POLL = { timeout: 30_000, interval: 50 };

function shipOptions(stream: string, more: Partial<ShipOptions> = {}): ShipOptions {
  return { servers: cluster().servers, stream, maxMessageBytes: 64 * 1024, duplicateWindowMs: DUPLICATE_WINDOW_MS, ...more };
}

/** Commits `count` transactions, every tenth one chunked (200 KiB); returns the last commit LSN. */
async function commitSome(wal: Wal, count: number, label: string): Promise<number> {
  let last = 0;
  for (let i = 0; i < count; i++) {
    const large = i % 10 === 9;
    last = (await wal.commit([Buffer.from(`${label} ${i}`), Buffer.alloc(large ? 200 * 1024 : i * 7, 'z')]))!.commitLsn;
  }
  return last;
}

describe('a stream that lost messages it had acknowledged', () => {
  it('purged: the shipper ships the log again from its local segments, the stream ends whole and chained; a live follower stops with WAL_REPLICATION_DIVERGED', async () => {
    const stream = 'diverge-purge';
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, sync: 'per-commit', segmentBytes: 64 * 1024 });
    const shipper = await ship(wal, shipOptions(stream));
    const before = await commitSome(wal, 25, 'before');
    await shipper.acknowledged(before);
    const follower = await followStream({ servers: cluster().servers, stream, dir: tempDir() });
    const followed = follower.done.catch((error: unknown) => error);
    await expect.poll(() => follower.status().appliedCommitLsn, POLL).toBe(before);

    await connection().jsm.streams.purge(stream);
    await expect.poll(() => shipper.status().divergences, POLL).toBe(1);
    const after = await commitSome(wal, 25, 'after');
    await shipper.acknowledged(after);
    expect(shipper.status()).toMatchObject({ state: 'shipping', divergences: 1, acknowledgedCommitLsn: after });

    const shipped = await readShipped(connection(), stream);
    expectSameTransactions(shipped.transactions, await committed(dir), 'the stream shipped again after the purge');
    // The new chain starts after the purged sequences: the stream kept its sequence numbers.
    expect((await describeStream(connection(), stream)).state.first_seq).toBeGreaterThan(1);

    const error = await followed;
    expect(error).toBeInstanceOf(WalError);
    expect(error).toMatchObject({ code: 'WAL_REPLICATION_DIVERGED', message: expect.stringMatching(/chain is broken/) });
    expect(follower.status().state).toBe('failed');
    await shipper.close();
    await wal.close();
  });

  it('purged while the writer commits: shipped again whole, or, once the shipper chained on the purged messages, WAL_REPLICATION_DIVERGED that no reader mistakes for the log', async () => {
    const seed = testSeed('purge while shipping', 'SEGWAL_PURGE_SEED', () => randomInt(2 ** 32));
    const random = mulberry32(seed);
    const stream = 'diverge-purge-live';
    const dir = tempDir();
    const replica = tempDir();
    const { wal } = await Wal.open({ dir, sync: { mode: 'group', intervalMs: 5 } });
    const shipper = await ship(wal, shipOptions(stream));
    const failures: WalError[] = [];
    shipper.on('failure', (error) => failures.push(error));
    const writer = keepCommitting(wal, random, { largeOneIn: 40 });
    let follower: FollowerHandle | undefined;
    let followed: Promise<unknown> = Promise.resolve();
    try {
      await expect.poll(() => shipper.status().acknowledgedCommitLsn, POLL).toBeGreaterThan(0);
      follower = await followStream({ servers: cluster().servers, stream, dir: replica });
      followed = follower.done.catch((error: unknown) => error);
      await expect.poll(() => follower!.status().appliedCommitLsn, POLL).toBeGreaterThan(0);
      await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 300)));
      await connection().jsm.streams.purge(stream);
      // The purge is noticed within a second; what was published after it in the meantime decides which way it goes.
      await expect.poll(() => shipper.status().divergences + failures.length, POLL).toBeGreaterThan(0);
    } finally {
      await writer.stop();
    }
    if (follower === undefined) throw new Error('the follower did not start');
    const source = await committed(dir);
    const context = `seed ${seed}`;
    console.log(`purge while shipping: ${failures.length === 0 ? 'shipped again whole' : 'a hole, WAL_REPLICATION_DIVERGED'} (${source.length} transactions, ${context})`);
    if (failures.length === 0) {
      // Nothing was stored after the purge before the shipper saw it: the log goes in again from its start.
      await shipper.acknowledged(source.at(-1)!.commitLsn);
      expect(shipper.status()).toMatchObject({ state: 'shipping', divergences: 1 });
      expectSameTransactions((await readShipped(connection(), stream)).transactions, source, `${context}: the stream shipped again`);
      expect(await followed, `${context}: the follower of the purged chain`).toMatchObject({ code: 'WAL_REPLICATION_DIVERGED' });
    } else {
      // Messages went in after the purge, chained on purged ones: a hole at the stream's start.
      expect(failures[0], context).toMatchObject({ code: 'WAL_REPLICATION_DIVERGED', message: expect.stringMatching(/hole/) });
      expect(shipper.status().state).toBe('failed');
      await expect(restoreFromStream({ servers: cluster().servers, stream, dir: tempDir() }), context).rejects.toMatchObject({
        code: 'WAL_REPLICATION_DIVERGED',
      });
      // A follower that had not read all the purged messages meets the break; one that had goes on, rightly.
      await follower.close().catch(() => undefined);
      const outcome = await followed;
      if (outcome instanceof Error) expect(outcome, `${context}: the follower of the purged chain`).toMatchObject({ code: 'WAL_REPLICATION_DIVERGED' });
    }
    // Whatever the follower of the old chain applied is the log's, in order, nothing invented.
    await followed;
    expectPrefixOf(await committed(replica), source, `${context}: the follower of the purged chain`);
    await shipper.close();
    await wal.close();
  });

  it('its last messages deleted: the shipper ships them again after the ones the stream still holds', async () => {
    const stream = 'diverge-delete';
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, sync: 'per-commit' });
    const shipper = await ship(wal, shipOptions(stream));
    // One message per commit: each is acknowledged before the next is committed.
    for (let i = 0; i < 10; i++) await shipper.acknowledged((await wal.commit([Buffer.from(`one by one ${i}`)]))!.commitLsn);
    const { state } = await describeStream(connection(), stream);
    expect(state.messages).toBe(10);
    for (let seq = state.last_seq; seq > state.last_seq - 3; seq--) await connection().jsm.streams.deleteMessage(stream, seq);

    await expect.poll(() => shipper.status().divergences, POLL).toBe(1);
    const after = await commitSome(wal, 12, 'after the delete');
    await shipper.acknowledged(after);
    const shipped = await readShipped(connection(), stream);
    expectSameTransactions(shipped.transactions, await committed(dir), 'the stream after shipping the deleted messages again');
    expect(shipper.status()).toMatchObject({ state: 'shipping', divergences: 1 });
    await shipper.close();
    await wal.close();
  });

  it('a message deleted in the middle of the chain is a hole no appending mends: WAL_REPLICATION_DIVERGED', async () => {
    const stream = 'diverge-hole';
    const { wal } = await Wal.open({ dir: tempDir(), sync: 'per-commit' });
    const shipper = await ship(wal, shipOptions(stream));
    const failures: WalError[] = [];
    shipper.on('failure', (error) => failures.push(error));
    for (let i = 0; i < 6; i++) await shipper.acknowledged((await wal.commit([Buffer.from(`one by one ${i}`)]))!.commitLsn);
    await connection().jsm.streams.deleteMessage(stream, 3);

    await expect.poll(() => failures.length, POLL).toBe(1);
    expect(failures[0]).toMatchObject({ code: 'WAL_REPLICATION_DIVERGED' });
    expect(shipper.status()).toMatchObject({ state: 'failed', lastError: failures[0]!.message });
    // Nothing more went into the stream after the hole.
    expect((await describeStream(connection(), stream)).state).toMatchObject({ messages: 5, last_seq: 6 });
    await shipper.close();
    await wal.close();
  });

  it('purged after the local log truncated what it lacks: shipping stops with WAL_REPLICATION_DIVERGED, and the Wal goes on', async () => {
    const stream = 'diverge-truncated';
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, sync: 'per-commit', segmentBytes: 16 * 1024 });
    const shipper = await ship(wal, shipOptions(stream));
    const failures: WalError[] = [];
    shipper.on('failure', (error) => failures.push(error));
    const shippedUpTo = await commitSome(wal, 30, 'shipped');
    await shipper.acknowledged(shippedUpTo);
    // Everything is acknowledged, so the checkpoint may delete the segments that hold it.
    await wal.checkpoint(() => undefined);
    expect(wal.status().oldestLsn).toBeGreaterThan(1);

    await connection().jsm.streams.purge(stream);
    await expect.poll(() => failures.length, POLL).toBe(1);
    expect(failures[0]).toBeInstanceOf(WalError);
    expect(failures[0]).toMatchObject({ code: 'WAL_REPLICATION_DIVERGED', message: expect.stringMatching(/no longer holds/) });
    expect(shipper.status()).toMatchObject({ state: 'failed', divergences: 1 });
    await expect(shipper.acknowledged(shippedUpTo + 1)).rejects.toMatchObject({ code: 'WAL_REPLICATION_DIVERGED' });
    // Nothing was shipped again: the stream holds no partial history.
    expect((await describeStream(connection(), stream)).state.messages).toBe(0);
    expect(await wal.commit([Buffer.from('the log goes on')])).not.toBeNull();
    await shipper.close();
    await wal.close();
  });

  it('shipDirectory, after the writer truncated what the stream lacks: WAL_REPLICATION_DIVERGED rather than a hole', async () => {
    const stream = 'diverge-directory';
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, sync: 'per-commit', segmentBytes: 16 * 1024 });
    const shippedUpTo = await commitSome(wal, 10, 'shipped');
    const first = await shipDirectory(dir, shipOptions(stream));
    await first.acknowledged(shippedUpTo);
    await first.close();
    // A process of its own cannot hold the writer's truncation: the writer goes on and truncates.
    await commitSome(wal, 30, 'never shipped');
    await wal.checkpoint(() => undefined);
    expect(wal.status().oldestLsn).toBeGreaterThan(shippedUpTo);

    const second = await shipDirectory(dir, shipOptions(stream));
    const failure = await new Promise<WalError>((resolve) => second.on('failure', resolve));
    expect(failure).toMatchObject({ code: 'WAL_REPLICATION_DIVERGED', message: expect.stringMatching(/no longer holds/) });
    expect(second.status().state).toBe('failed');
    expect((await readShipped(connection(), stream)).transactions.at(-1)?.commitLsn).toBe(shippedUpTo);
    await second.close();
    await wal.close();
  });

  it('shipDirectory on a log damaged in a sealed segment stops with the damage, where it retried for ever', async () => {
    const stream = 'damaged-directory';
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, sync: 'per-commit', segmentBytes: 16 * 1024 });
    await commitSome(wal, 30, 'damaged');
    await wal.close();
    // A payload byte of the first segment's second frame: its CRC no longer holds.
    const first = path.join(dir, '0000000001.wal');
    const bytes = fs.readFileSync(first);
    const secondFrame = 32 + bytes.readUInt32LE(32);
    bytes[secondFrame + 30] = bytes[secondFrame + 30]! ^ 0x40;
    fs.writeFileSync(first, bytes);

    const shipper = await shipDirectory(dir, shipOptions(stream));
    const failure = await new Promise<WalError>((resolve) => shipper.on('failure', resolve));
    expect(failure).toMatchObject({ code: 'WAL_MALFORMED', message: expect.stringMatching(/0000000001\.wal/) });
    expect(shipper.status()).toMatchObject({ state: 'failed', lastError: failure.message });
    await shipper.close();
  });

  it('a replica resuming on a stream shipped anew from a later point refuses it: applying it would leave a hole', async () => {
    const stream = 'diverge-replica';
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, sync: 'per-commit', segmentBytes: 16 * 1024 });
    const first = await ship(wal, shipOptions(stream));
    const replicated = await commitSome(wal, 10, 'replicated');
    await first.acknowledged(replicated);
    await first.close();
    const replica = tempDir();
    expect(await restoreFromStream({ servers: cluster().servers, stream, dir: replica })).toMatchObject({ appliedCommitLsn: replicated });

    // The stream is purged and a new shipper starts on it: an empty stream is shipped from the last checkpoint on.
    await commitSome(wal, 10, 'missed by the replica');
    await wal.checkpoint(() => undefined);
    await connection().jsm.streams.purge(stream);
    const second = await ship(wal, shipOptions(stream));
    await second.acknowledged(await commitSome(wal, 3, 'shipped anew'));
    await second.close();
    expect((await readShipped(connection(), stream)).transactions[0]!.commitLsn).toBeGreaterThan(replicated + 1);

    await expect(restoreFromStream({ servers: cluster().servers, stream, dir: replica })).rejects.toMatchObject({ code: 'WAL_REPLICATION_DIVERGED' });
    expect((await committed(replica)).at(-1)?.commitLsn).toBe(replicated);
    await wal.close();
  });
});
