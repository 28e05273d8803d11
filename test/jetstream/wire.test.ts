import { expect, it } from 'vitest';
import { Wal, readTransactions } from '../../src/index.js';
import { MessageBuilder } from '../../src/jetstream/message-builder.js';
import {
  commitFrameEncodedSize,
  commitFramesRoom,
  decodeTransactions,
  encodeCommitFrames,
  encodeTransaction,
  encodedSize,
  type WireMessage,
  type WireTransaction,
} from '../../src/jetstream/wire.js';
import { isCommitRun } from '../../src/read/log-stream.js';
import { transactionBatches, type Shippable, type ShippableTransaction } from '../../src/readers.js';
import { itemTransactions } from '../helpers/commit-runs.js';
import { tempDir } from '../helpers/temp-dir.js';

/*
 * The shipper reads a one-frame transaction's events as the frame stores
 * them (its batch), consecutive ones as their frames (a run), and copies
 * them into the message a block each, where the follower reads them as
 * count, then length and bytes each: the forms must be the same bytes on
 * the wire.
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
  const open = wal.begin();
  open.append(Buffer.from('spans'));
  await wal.commit([Buffer.from('while'), Buffer.from('open')]); // a Commit record while a transaction is open
  await open.commit();
  await wal.close();
}

/** The shipper's reads, each copied as it comes: a batch's views last until the next batch is asked for. */
async function shippable(dir: string): Promise<Shippable[]> {
  const all: Shippable[] = [];
  for await (const batch of transactionBatches(readTransactions(dir))) {
    for (const item of batch) {
      all.push(isCommitRun(item) ? { ...item, frames: Buffer.from(item.frames) } : { ...item, events: item.events.map((event) => Buffer.from(event)), batch: item.batch === null ? null : Buffer.from(item.batch) });
    }
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

function form(item: Shippable): string {
  if (isCommitRun(item)) return `run of ${item.count}`;
  return item.batch === null ? 'events' : 'batch';
}

it('hands one-frame transactions over as runs of their frames while no other is open, one read while another is open as its batch, one of several records as its events', async () => {
  const dir = tempDir();
  await writeMixedLog(dir);
  const read = await shippable(dir);
  // The first record of a segment is read as the segment opens, on its own.
  expect(read.map(form)).toEqual(['batch', 'events', 'run of 2', 'batch', 'events']);
  const [several, whileOpen, spanning] = [1, 3, 4].map((index) => read[index] as ShippableTransaction) as [ShippableTransaction, ShippableTransaction, ShippableTransaction];
  expect(several.events.map(String)).toEqual(['a', 'bb']);
  expect(whileOpen.events).toEqual([]);
  expect(spanning.events.map(String)).toEqual(['spans']);
  const expected = await decoded(dir);
  expect(itemTransactions(read).map((tx) => tx.commitLsn)).toEqual(expected.map((tx) => tx.commitLsn));
});

it('encodes a transaction from its batch, and from its Commit frame, to the same bytes as from its events', async () => {
  const dir = tempDir();
  await writeMixedLog(dir);
  const asRead = await shippable(dir);
  const asEvents = await decoded(dir);
  expect(itemTransactions(asRead).map((tx) => encode(tx))).toEqual(asEvents.map((tx) => encode(tx)));
  // A run's frames, laid down whole after bytes already in the target, which stay as they were.
  const byCommit = new Map(asEvents.map((tx) => [tx.commitLsn, encode(tx)]));
  for (const run of asRead.filter(isCommitRun)) {
    const expected = Buffer.concat(itemTransactions([run]).map((tx) => byCommit.get(tx.commitLsn) as Buffer));
    let encodedBytes = 0;
    for (let at = 0; at < run.frames.length; at += run.frames.readUInt32LE(at)) encodedBytes += commitFrameEncodedSize(run.frames.readUInt32LE(at));
    expect(encodedBytes).toBe(expected.length);
    const before = Buffer.from('before');
    const target = Buffer.alloc(before.length + commitFramesRoom(encodedBytes), 0xee);
    before.copy(target);
    const end = encodeCommitFrames(target, before.length, run.frames, 0, run.frames.length);
    expect(end).toBe(before.length + expected.length);
    expect(target.subarray(0, before.length)).toEqual(before);
    expect(target.subarray(before.length, end)).toEqual(expected);
  }
});

/** What `builder` makes of `items`, with what it says of each stretch of a run it placed. */
function build(builder: MessageBuilder, items: readonly Shippable[]): { messages: WireMessage[]; pieces: Array<{ lastCommitLsn: number; transactions: number; bytes: number }> } {
  const messages: WireMessage[] = [];
  const pieces: Array<{ lastCommitLsn: number; transactions: number; bytes: number }> = [];
  for (const item of items) {
    if (isCommitRun(item)) messages.push(...builder.addRun(item, (lastCommitLsn, transactions, bytes) => pieces.push({ lastCommitLsn, transactions, bytes })));
    else messages.push(...builder.add(item));
  }
  const last = builder.flush();
  if (last !== null) messages.push(last);
  return { messages, pieces };
}

it('messages built from runs and batches decode, chunks joined, to the transactions the log holds', async () => {
  const dir = tempDir();
  await writeMixedLog(dir);
  // 1 KiB bodies: the first transactions share a message, the 3 KiB one is cut into chunks.
  const builder = new MessageBuilder('log', 1024, { previous: null, resume: { fromLsn: 1, scanFromLsn: 1 }, unfinishedChunk: null });
  const read = await shippable(dir);
  const { messages, pieces: placed } = build(builder, read);
  // Every transaction of a run is counted once, in the message it went into.
  const inRuns = itemTransactions(read.filter(isCommitRun));
  expect(placed.reduce((sum, piece) => sum + piece.transactions, 0)).toBe(inRuns.length);
  expect(placed.reduce((sum, piece) => sum + piece.bytes, 0)).toBe(inRuns.reduce((sum, tx) => sum + encodedSize(tx), 0));
  // A stretch never spans two messages: the shipper counts it acknowledged with the message that holds its last transaction.
  let taken = 0;
  for (const piece of placed) {
    const first = (inRuns[taken] as ShippableTransaction).commitLsn;
    taken += piece.transactions;
    expect((inRuns[taken - 1] as ShippableTransaction).commitLsn).toBe(piece.lastCommitLsn);
    expect(messages.some((message) => message.firstCommitLsn <= first && piece.lastCommitLsn <= message.lastCommitLsn)).toBe(true);
  }
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

it('cuts a long run into messages at frame boundaries, each body within its bound, and decodes to the transactions the log holds', async () => {
  const dir = tempDir();
  const { wal } = await Wal.open({ dir });
  for (let i = 0; i < 500; i++) await wal.commit(Array.from({ length: 1 + (i % 3) }, (_, j) => Buffer.alloc((i * 37 + j * 11) % 300, i % 251)));
  await wal.close();
  const read = await shippable(dir);
  expect(Math.max(...read.filter(isCommitRun).map((run) => run.count))).toBeGreaterThan(100);
  const maxBody = 4096;
  const builder = new MessageBuilder('log', maxBody, { previous: null, resume: { fromLsn: 1, scanFromLsn: 1 }, unfinishedChunk: null });
  const { messages, pieces: placed } = build(builder, read);
  expect(messages.length).toBeGreaterThan(10);
  expect(messages.every((message) => message.chunk === null && message.body.length <= maxBody)).toBe(true);
  expect(placed.length).toBeGreaterThanOrEqual(messages.length - 1);
  const received = messages.flatMap((message) => decodeTransactions(Buffer.from(message.body), message.msgId));
  const text = (txs: WireTransaction[]) => txs.map((tx) => ({ beginLsn: tx.beginLsn, commitLsn: tx.commitLsn, events: tx.events.map((event) => Buffer.from(event).toString('hex')) }));
  expect(text(received)).toEqual(text(await decoded(dir)));
  // Each message names the commits it holds, and chains to the one before.
  for (const [i, message] of messages.entries()) {
    const held = decodeTransactions(Buffer.from(message.body), message.msgId);
    expect([message.firstCommitLsn, message.lastCommitLsn]).toEqual([held[0]?.commitLsn, held.at(-1)?.commitLsn]);
    expect(message.previous).toBe(i === 0 ? null : messages[i - 1]?.msgId);
    expect(message.resume).toEqual({ fromLsn: message.lastCommitLsn + 1, scanFromLsn: message.lastCommitLsn + 1 });
  }
});
