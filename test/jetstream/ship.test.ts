import { describe, expect, it } from 'vitest';
import { Wal } from '../../src/index.js';
import { ship } from '../../src/jetstream/index.js';
import { committed } from '../helpers/copies.js';
import { readShipped, ShippedReader } from '../helpers/shipped.js';
import { useConnection } from '../helpers/jetstream.js';
import { useCluster } from '../helpers/nats-cluster.js';
import { tempDir } from '../helpers/temp-dir.js';

const cluster = useCluster({ nodes: 3 });
const connection = useConnection(cluster);

describe('ship(wal)', () => {
  it('ships every committed transaction once, in commit order, in chained messages; a large one in chunks', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, sync: 'per-commit', segmentBytes: 64 * 1024 });
    const shipper = await ship(wal, { servers: cluster().servers, stream: 'ship-basic', maxMessageBytes: 64 * 1024 });
    // Committed together, made durable together, read together: they go out batched. (One at a
    // time, each would reach the shipper alone, and go out alone: it does not wait to fill a message.)
    await Promise.all(Array.from({ length: 50 }, (_, i) => wal.commit([Buffer.from(`small ${i}`), Buffer.from('x'.repeat(i * 10))])));
    const big = Buffer.alloc(300 * 1024, 'b');
    const multi = wal.begin();
    multi.append(Buffer.from('begun early'));
    await wal.commit([big]);
    multi.append(Buffer.from('appended later'));
    const aborted = wal.begin();
    aborted.append(Buffer.from('never shipped'));
    aborted.abort();
    const last = await multi.commit();
    await shipper.acknowledged(last.commitLsn);
    expect(shipper.status()).toMatchObject({ state: 'shipping', acknowledgedCommitLsn: last.commitLsn, transactionsBehind: 0, lastError: null });
    const shipped = await readShipped(connection(), 'ship-basic');
    expect(shipped.logIds).toEqual(new Set([wal.logId]));
    expect(shipped.transactions).toEqual(await committed(dir));
    expect(shipped.transactions).toHaveLength(52);
    // Batched: fewer messages than transactions, though the big one took several chunks.
    expect(shipped.messages).toBeLessThan(52);
    // The test reader's way round a consumer 2.9.10 leaves unanswered (helpers/shipped.ts) reads the same.
    const byGets = new ShippedReader(connection(), 'ship-basic', 0);
    await byGets.catchUp();
    expect(byGets.chunkedTransactions).toBeGreaterThan(0);
    expect({ transactions: byGets.transactions, messages: byGets.messages, chunked: byGets.chunkedTransactions }).toEqual({
      transactions: shipped.transactions,
      messages: shipped.messages,
      chunked: shipped.chunkedTransactions,
    });
    await shipper.close();
    expect(shipper.status().state).toBe('closed');
    await wal.close();
  });

  it('ships only what is durable: in group mode nothing goes out before the fsync', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, sync: { mode: 'group', intervalMs: 60_000 } });
    const shipper = await ship(wal, { servers: cluster().servers, stream: 'ship-durable' });
    const { commitLsn } = (await wal.commit([Buffer.from('written, not durable')]))!;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(shipper.status().shippedCommitLsn).toBe(0);
    expect((await readShipped(connection(), 'ship-durable')).transactions).toEqual([]);
    await wal.sync();
    await shipper.acknowledged(commitLsn);
    expect((await readShipped(connection(), 'ship-durable')).transactions.map((tx) => tx.events)).toEqual([['written, not durable']]);
    await shipper.close();
    await wal.close();
  });

  it('a new shipper asks the stream where it stands and goes on from there: nothing twice, nothing skipped', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, sync: 'per-commit' });
    const servers = cluster().servers;
    for (let round = 0; round < 3; round++) {
      const shipper = await ship(wal, { servers, stream: 'ship-restart' });
      let lastLsn = 0;
      for (let i = 0; i < 10; i++) lastLsn = (await wal.commit([Buffer.from(`round ${round} commit ${i}`)]))!.commitLsn;
      await shipper.acknowledged(lastLsn);
      await shipper.close();
    }
    const shipped = await readShipped(connection(), 'ship-restart');
    expect(shipped.transactions).toEqual(await committed(dir));
    expect(shipped.transactions).toHaveLength(30);
    await wal.close();
  });

  it('a new shipper on a stream that already holds the whole log acknowledges it at once, and lets retention go', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, sync: 'per-commit', segmentBytes: 16 * 1024 });
    const servers = cluster().servers;
    const first = await ship(wal, { servers, stream: 'ship-all-there' });
    let lastLsn = 0;
    for (let i = 0; i < 40; i++) lastLsn = (await wal.commit([Buffer.alloc(1024, `commit ${i} `)]))!.commitLsn;
    await first.acknowledged(lastLsn);
    await first.close();
    const messages = (await readShipped(connection(), 'ship-all-there')).messages;

    // Asked before it has looked at the stream: only the stream's word can answer, no publish will.
    const second = await ship(wal, { servers, stream: 'ship-all-there' });
    await second.acknowledged(lastLsn);
    expect(second.status()).toMatchObject({ acknowledgedCommitLsn: lastLsn, shippedCommitLsn: 0 });
    await expect.poll(() => second.status().bytesBehind).toBeLessThan(16 * 1024);
    await wal.checkpoint(() => undefined);
    expect(wal.status().oldestLsn).toBeGreaterThan(1);
    expect((await readShipped(connection(), 'ship-all-there')).messages).toBe(messages);
    await second.close();
    await wal.close();
  });
});
