import { describe, expect, it } from 'vitest';
import { Wal, WalError, readTransactions } from '../../src/index.js';
import { RecordKind } from '../../src/format/constants.js';
import { isCommitRun } from '../../src/read/log-stream.js';
import { transactionBatches } from '../../src/readers.js';
import { itemTransactions } from '../helpers/commit-runs.js';
import { commitRecord, craftFrame, craftSegment, writeSegment, type CraftedRecord } from '../helpers/craft.js';
import { tempDir } from '../helpers/temp-dir.js';

/*
 * The shipper reads consecutive one-frame transactions as runs of their
 * Commit frames, with no object per frame. A run must be checked as every
 * record is: anything wrong in it ends the run before it, and the reader
 * then refuses it exactly as a reader of transactions one by one does. And a
 * live log's run stops at the durable LSN, so what is durable is handed over
 * without waiting for what is not.
 */

const COMMITS = 20;
/** The record spoiled: runs come before it (the first record of a segment is read on its own). */
const SPOILED = 10;

function frameOffset(records: readonly CraftedRecord[], index: number): number {
  return 32 + records.slice(0, index).reduce((sum, record) => sum + craftFrame(record).length, 0);
}

/** Segment 1 (sealed) holds the spoiled record among COMMITS Commit records; segment 2, the last, one more. */
function spoiledLog(spoil: (records: CraftedRecord[]) => CraftedRecord[], spoilBytes?: (segment: Buffer, at: number) => void): string {
  const dir = tempDir();
  const records = spoil(Array.from({ length: COMMITS }, (_, i) => commitRecord(1 + 3 * i, [`event ${i}`])));
  const segment = craftSegment(1, records, true);
  spoilBytes?.(segment, frameOffset(records, SPOILED));
  writeSegment(dir, 1, segment);
  writeSegment(dir, 2, craftSegment(1 + 3 * COMMITS, [commitRecord(1 + 3 * COMMITS, ['last'])]));
  return dir;
}

const replace = (record: CraftedRecord) => (records: CraftedRecord[]) => records.map((one, i) => (i === SPOILED ? record : one));
const begin = 1 + 3 * SPOILED;

const spoilers: Array<[string, (records: CraftedRecord[]) => CraftedRecord[], ((segment: Buffer, at: number) => void)?]> = [
  ['a flipped payload byte (its CRC fails)', (records) => records, (segment, at) => segment.writeUInt8(segment.readUInt8(at + 30) ^ 0x01, at + 30)],
  ['a frame length one too long', (records) => records, (segment, at) => segment.writeUInt32LE(segment.readUInt32LE(at) + 1, at)],
  ['a missing transaction (LSNs skip)', (records) => records.map((record, i) => (i < SPOILED ? record : commitRecord(1 + 3 * (i + 1), [`event ${i}`])))],
  ['a Commit record spanning four LSNs', replace({ ...commitRecord(begin, ['x']), lsn: begin + 3 })],
  ['a Commit record with no event (count 0)', replace({ ...commitRecord(begin, []), payload: Buffer.alloc(4) })],
  ['a batch with bytes after its entries', replace({ ...commitRecord(begin, ['x']), payload: Buffer.concat([commitRecord(begin, ['x']).payload as Buffer, Buffer.from('!')]) })],
  ['an unknown record kind', replace({ ...commitRecord(begin, ['x']), kind: 9 as RecordKind })],
  ['a TxCommit naming a transaction never begun', replace({ kind: RecordKind.TxCommit, lsn: begin, txBeginLsn: begin - 1 })],
];

interface Outcome {
  commitLsns: number[];
  error: { code: string; message: string } | null;
}

type Io = 'native' | 'js';

async function oneByOne(dir: string, io: Io): Promise<Outcome> {
  const commitLsns: number[] = [];
  try {
    for await (const tx of readTransactions(dir, { io })) commitLsns.push(tx.commitLsn);
  } catch (error) {
    return { commitLsns, error: { code: (error as WalError).code, message: (error as WalError).message } };
  }
  return { commitLsns, error: null };
}

async function asShipped(dir: string, io: Io): Promise<Outcome & { runs: number }> {
  const commitLsns: number[] = [];
  let runs = 0;
  try {
    for await (const batch of transactionBatches(readTransactions(dir, { io }))) {
      runs += batch.filter(isCommitRun).length;
      commitLsns.push(...itemTransactions(batch).map((tx) => tx.commitLsn));
    }
  } catch (error) {
    expect(error).toBeInstanceOf(WalError);
    return { commitLsns, runs, error: { code: (error as WalError).code, message: (error as WalError).message } };
  }
  return { commitLsns, runs, error: null };
}

// The native backend checks a window's CRCs in one call; the js one each frame's on its own.
describe.each(['native', 'js'] as const)('a run of Commit records is checked as every record is (io %s)', (io) => {
  it('reads an unspoiled log the same both ways, in runs', async () => {
    const dir = spoiledLog((records) => records);
    const expected = await oneByOne(dir, io);
    expect(expected.error).toBeNull();
    expect(expected.commitLsns).toHaveLength(COMMITS + 1);
    const shipped = await asShipped(dir, io);
    expect(shipped.runs).toBeGreaterThan(0);
    expect({ commitLsns: shipped.commitLsns, error: shipped.error }).toEqual(expected);
  });

  it.each(spoilers)('%s ends the run before it, and is refused as a reader one by one refuses it', async (_name, spoil, spoilBytes) => {
    const dir = spoiledLog(spoil, spoilBytes);
    const expected = await oneByOne(dir, io);
    expect(expected.error).not.toBeNull();
    expect(expected.commitLsns).toHaveLength(SPOILED);
    const shipped = await asShipped(dir, io);
    expect(shipped.runs).toBeGreaterThan(0);
    expect({ commitLsns: shipped.commitLsns, error: shipped.error }).toEqual(expected);
  });
});

it('hands a live log over up to its durable LSN in runs while the transactions after it wait', async () => {
  const dir = tempDir();
  // Written to the OS at once, fsync'd only when asked.
  const { wal } = await Wal.open({ dir, sync: { mode: 'group', intervalMs: 60_000 } });
  const event = Buffer.alloc(100, 7);
  const commitLsns: number[] = [];
  for (let i = 0; i < 2000; i++) commitLsns.push((await wal.commit([event]))?.commitLsn as number);
  await wal.sync();
  const durable = wal.durableLsn;
  for (let i = 0; i < 2000; i++) commitLsns.push((await wal.commit([event]))?.commitLsn as number);
  expect(wal.durableLsn).toBe(durable);

  const seen: number[] = [];
  let runs = 0;
  const reading = (async () => {
    for await (const batch of transactionBatches(wal.readTransactions({ fromLsn: 1 }))) {
      const durableNow = wal.durableLsn;
      for (const item of batch) expect(item.commitLsn).toBeLessThanOrEqual(durableNow);
      runs += batch.filter(isCommitRun).length;
      seen.push(...itemTransactions(batch).map((tx) => tx.commitLsn));
      if ((seen.at(-1) ?? 0) >= (commitLsns.at(-1) as number)) return;
    }
  })();
  // Everything durable arrives while the rest is not durable yet.
  for (const deadline = Date.now() + 10_000; seen.at(-1) !== durable && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(seen.at(-1)).toBe(durable);
  expect(runs).toBeGreaterThan(0);
  await wal.sync();
  await reading;
  await wal.close();
  expect(seen).toEqual(commitLsns);
});
