import { expect, it } from 'vitest';
import { Wal, readTransactions } from '../../src/index.js';
import { encodeTransaction, encodedSize, type WireTransaction } from '../../src/jetstream/wire.js';
import { transactionBatches, type Shippable } from '../../src/readers.js';
import { itemTransactions } from '../helpers/commit-runs.js';
import { mulberry32 } from '../helpers/random.js';
import { tempDir } from '../helpers/temp-dir.js';

/*
 * The shipper's reads reuse the reader's memory: a batch's views are valid
 * until the next batch is asked for, as the shipper copies each transaction
 * into its message when it takes it. What is taken that way must be whole:
 * across the 1 MiB chunks the reader refills, for transactions of several
 * records that span a refill, and for transactions a live Wal's reader holds
 * back until they are durable while it reads on.
 */

/** A transaction's bytes on the wire, taken (copied) the moment it is handed over, as the shipper takes it. */
function taken(tx: WireTransaction): string {
  const target = Buffer.alloc(encodedSize(tx));
  encodeTransaction(target, 0, tx);
  return target.toString('base64');
}

async function takeAll(batches: AsyncGenerator<Shippable[]>, until: (commitLsn: number) => boolean): Promise<string[]> {
  const all: string[] = [];
  for await (const batch of batches) {
    for (const tx of itemTransactions(batch)) all.push(taken(tx));
    if (until(batch.at(-1)?.commitLsn ?? 0)) break;
  }
  return all;
}

/** An event whose bytes say which one it is: a view overwritten by another read shows. */
function event(random: () => number, bytes: number): Buffer {
  const value = Buffer.alloc(bytes, 7);
  for (let i = 0; i + 4 <= bytes; i += 4096) value.writeUInt32LE(Math.floor(random() * 2 ** 32), i);
  return value;
}

/** One-frame commits of 0 B to 12 KiB, and transactions of several records (~100 KiB events, two open at once) that span the reader's refills. */
async function commitMixed(wal: Wal, random: () => number, rounds: number): Promise<number> {
  let last = 0;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < 40; i++) last = (await wal.commit([event(random, Math.floor(random() * 12_288)), event(random, 3)]))?.commitLsn ?? last;
    const first = wal.begin();
    const second = wal.begin();
    for (let i = 0; i < 3; i++) {
      first.append(event(random, 90_000 + Math.floor(random() * 20_000)));
      second.append(event(random, 50_000));
    }
    last = (await first.commit()).commitLsn;
    last = (await second.commit()).commitLsn;
  }
  return last;
}

it('hands over whole transactions across refills of reused memory, when each is taken as it comes', async () => {
  const dir = tempDir();
  const { wal } = await Wal.open({ dir });
  const last = await commitMixed(wal, mulberry32(11), 12); // ~6 MiB: several segments, many chunks
  await wal.close();
  const expected: string[] = [];
  for await (const tx of readTransactions(dir)) expected.push(taken(tx));
  const read = await takeAll(transactionBatches(readTransactions(dir)), (commitLsn) => commitLsn >= last);
  expect(read.length).toBe(expected.length);
  expect(read).toEqual(expected);
});

it('keeps the transactions a live reader holds back until they are durable whole while it reads on into reused memory', async () => {
  const dir = tempDir();
  // Written to the OS at once, fsync'd only when asked: the reader holds everything back meanwhile.
  const { wal } = await Wal.open({ dir, sync: { mode: 'group', intervalMs: 60_000 } });
  const random = mulberry32(23);
  let last = await commitMixed(wal, random, 4);
  const reading = takeAll(transactionBatches(wal.readTransactions({ fromLsn: 1 })), (commitLsn) => commitLsn >= last);
  // Each write wakes the reader, which reads on (refilling) with everything before still held.
  for (let round = 0; round < 6; round++) {
    last = await commitMixed(wal, random, 1);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  expect(wal.durableLsn).toBeLessThan(last);
  await wal.sync();
  const read = await reading;
  await wal.close();
  const expected: string[] = [];
  for await (const tx of readTransactions(dir)) expected.push(taken(tx));
  expect(read.length).toBe(expected.length);
  expect(read).toEqual(expected);
});
