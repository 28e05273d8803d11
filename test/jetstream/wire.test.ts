import { expect, it } from 'vitest';
import { Wal, readTransactions } from '../../src/index.js';
import { MessageBuilder } from '../../src/jetstream/message-builder.js';
import { decodeTransactions, encodeTransaction, encodedSize, type WireTransaction } from '../../src/jetstream/wire.js';
import { transactionBatches, type ShippableTransaction } from '../../src/readers.js';
import { tempDir } from '../helpers/temp-dir.js';

/*
 * The shipper reads a one-frame transaction's events as the frame stores
 * them (its batch) and copies them into the message as one block, where the
 * follower reads them as count, then length and bytes each: the two forms
 * must be the same bytes on the wire.
 */

async function writeMixedLog(dir: string): Promise<void> {
  const { wal } = await Wal.open({ dir });
  await wal.commit([Buffer.from('one'), Buffer.from('two')]); // a Commit record
  const three = wal.begin(); // TxBegin, Mutations, TxCommit
  three.append(Buffer.from('a'));
  three.append(Buffer.from('bb'));
  await three.commit();
  const aborted = wal.begin();
  aborted.append(Buffer.from('never'));
  aborted.abort();
  await wal.commit([Buffer.alloc(0), Buffer.alloc(3000, 'x')]); // an empty event, and a transaction larger than the messages below
  await wal.commit([Buffer.from('last')]);
  await wal.close();
}

/** The shipper's reads, each transaction copied as it comes: a batch's views last until the next batch is asked for. */
async function shippable(dir: string): Promise<ShippableTransaction[]> {
  const all: ShippableTransaction[] = [];
  for await (const batch of transactionBatches(readTransactions(dir))) {
    for (const tx of batch) all.push({ ...tx, events: tx.events.map((event) => Buffer.from(event)), batch: tx.batch === null ? null : Buffer.from(tx.batch) });
  }
  return all;
}

async function decoded(dir: string): Promise<WireTransaction[]> {
  const all: WireTransaction[] = [];
  for await (const tx of readTransactions(dir)) all.push({ beginLsn: tx.beginLsn, commitLsn: tx.commitLsn, events: tx.events });
  return all;
}

function encode(tx: WireTransaction): Buffer {
  const target = Buffer.alloc(encodedSize(tx));
  expect(encodeTransaction(target, 0, tx)).toBe(target.length);
  return target;
}

it('hands a one-frame transaction over as its batch, a transaction of several records as its events', async () => {
  const dir = tempDir();
  await writeMixedLog(dir);
  const read = await shippable(dir);
  expect(read.map((tx) => (tx.batch === null ? 'events' : 'batch'))).toEqual(['batch', 'events', 'batch', 'batch']);
  expect(read.filter((tx) => tx.batch !== null).every((tx) => tx.events.length === 0)).toBe(true);
  expect(read[1]?.events.map(String)).toEqual(['a', 'bb']);
});

it('encodes a transaction from its batch to the same bytes as from its events', async () => {
  const dir = tempDir();
  await writeMixedLog(dir);
  const asRead = await shippable(dir);
  const asEvents = await decoded(dir);
  expect(asRead.map((tx) => encode(tx))).toEqual(asEvents.map((tx) => encode(tx)));
});

it('messages built from batches decode, chunks joined, to the transactions the log holds', async () => {
  const dir = tempDir();
  await writeMixedLog(dir);
  // 1 KiB bodies: the first transactions share a message, the 3 KiB one is cut into chunks.
  const builder = new MessageBuilder('log', 1024, { previous: null, resume: { fromLsn: 1, scanFromLsn: 1 }, unfinishedChunk: null });
  const messages = (await shippable(dir)).flatMap((tx) => builder.add(tx));
  const last = builder.flush();
  if (last !== null) messages.push(last);
  expect(messages.some((message) => message.chunk !== null)).toBe(true);
  const received: WireTransaction[] = [];
  let pieces: Uint8Array[] = [];
  for (const message of messages) {
    if (message.chunk === null) {
      received.push(...decodeTransactions(Buffer.from(message.body), message.msgId));
      continue;
    }
    pieces.push(message.body);
    if (message.chunk.offset + message.body.length === message.chunk.total) {
      received.push(...decodeTransactions(Buffer.concat(pieces), message.msgId));
      pieces = [];
    }
  }
  const text = (txs: WireTransaction[]) => txs.map((tx) => ({ beginLsn: tx.beginLsn, commitLsn: tx.commitLsn, events: tx.events.map((event) => Buffer.from(event).toString()) }));
  expect(text(received)).toEqual(text(await decoded(dir)));
});

it('refuses to hand batches over for a reader that decodes', async () => {
  const dir = tempDir();
  await writeMixedLog(dir);
  await expect(transactionBatches(readTransactions(dir, { codec: 'utf8' }) as never).next()).rejects.toThrow(TypeError);
});
