import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Wal, readTransactions, readWal, replayDir } from '../src/index.js';
import { RecordKind } from '../src/format/constants.js';
import { BACKENDS } from './helpers/backends.js';
import { events, texts } from './helpers/bytes.js';
import { runCli } from './helpers/cli.js';
import { segmentNames, tempDir } from './helpers/temp-dir.js';

/** A source log's transactions, interleaved and with aborted work between them, as a replica receives them: in commit order. */
const SOURCE = [
  { beginLsn: 1, commitLsn: 3, events: events('one') },
  { beginLsn: 6, commitLsn: 9, events: events('begun after, committed first') },
  { beginLsn: 4, commitLsn: 11, events: events('begun before, committed later', 'two events') },
  { beginLsn: 20, commitLsn: 21, events: [] },
];

describe.each(BACKENDS)('a replica log on the $name backend', ({ io }) => {
  it("holds its source's transactions at its source's LSNs: open, replayDir, readTransactions and verify see them so", async () => {
    const dir = tempDir();
    const logId = 'c0ffee'.padEnd(32, '0');
    const { wal } = await Wal.open({ dir, io: io(), replica: true, logId, segmentBytes: 1024 });
    for (const [seq, tx] of SOURCE.entries()) await wal.appendReplicated(tx, seq + 1);
    expect(wal.nextLsn).toBe(22);
    await wal.close();
    const expected = SOURCE.map((tx) => [tx.beginLsn, tx.commitLsn, texts(tx.events)]);
    const replayed: unknown[] = [];
    const { wal: reopened } = await Wal.open({ dir, io: io(), replica: true, onReplay: (batch, tx) => void replayed.push([tx.beginLsn, tx.commitLsn, texts(batch)]) });
    expect(replayed).toEqual(expected);
    await reopened.close();
    const read = [];
    for await (const tx of readTransactions(dir, { fromLsn: 1 })) read.push([tx.beginLsn, tx.commitLsn, texts(tx.events)]);
    expect(read).toEqual(expected);
    expect((await replayDir(dir, { checkpointLsn: 9 })).events.map(String)).toEqual(['begun before, committed later', 'two events']);
    const records = [];
    for await (const record of readWal(dir, { codec: 'utf8' })) records.push([record.kind, record.lsn, record.txBeginLsn, record.events]);
    expect(records).toEqual(SOURCE.map((tx) => [RecordKind.Replicated, tx.commitLsn, tx.beginLsn, texts(tx.events)]));
    expect((await runCli('verify', dir)).code).toBe(0);
  });

  it('takes no commit of its own, refuses a replicated transaction that does not follow, and is promoted by opening it without replica', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io(), replica: true });
    await wal.appendReplicated(SOURCE[0]!, 1);
    await expect(wal.commit(events('local'))).rejects.toMatchObject({ code: 'WAL_INVALID_OPTIONS', message: /replica/ });
    expect(() => wal.begin()).toThrow(expect.objectContaining({ code: 'WAL_INVALID_OPTIONS' }));
    await expect(wal.appendReplicated({ beginLsn: 2, commitLsn: 3, events: [] }, 2)).rejects.toMatchObject({ code: 'WAL_INVALID_OPTIONS', message: /does not follow LSN 3/ });
    await wal.close();
    // A log that is not a replica cannot be followed into.
    const plain = tempDir();
    const { wal: writer } = await Wal.open({ dir: plain, io: io() });
    await writer.commit(events('own'));
    await writer.close();
    await expect(Wal.open({ dir: plain, io: io(), replica: true })).rejects.toMatchObject({ code: 'WAL_INVALID_OPTIONS', message: /not a replica/ });
    // Promotion: the replica goes on as a log of its own, after its source's last LSN.
    const { wal: promoted, events: replayed } = await Wal.open({ dir, io: io() });
    expect(texts(replayed)).toEqual(['one']);
    expect(await promoted.commit(events('after promotion'))).toEqual({ beginLsn: 4, commitLsn: 6 });
    await promoted.close();
  });

  it("is refused a writer's directory even when it holds no record (its appends would make the log unopenable); the log opens as before", async () => {
    const dir = tempDir();
    await (await Wal.open({ dir, io: io() })).wal.close();
    const file = `${dir}/${segmentNames(dir)[0]!}`;
    const segment = fs.readFileSync(file);
    const refusal = { code: 'WAL_INVALID_OPTIONS', message: expect.stringMatching(/is not a replica \(its last segment is a writer's, though it holds no record yet\): a replica needs a directory of its own/), file };
    // An open that wrongly succeeds is closed, so that only the assertion fails.
    expect(await Wal.open({ dir, io: io(), replica: true }).then(({ wal }) => wal.close(), (error: unknown) => error)).toMatchObject(refusal);
    expect(() => Wal.openSync({ dir, io: io(), replica: true }).wal.closeSync()).toThrow(expect.objectContaining(refusal));
    expect(fs.readFileSync(file).equals(segment)).toBe(true);
    const { wal } = await Wal.open({ dir, io: io() });
    await wal.commit(events('own'));
    await wal.close();
    const reopened = await Wal.open({ dir, io: io() });
    expect(texts(reopened.events)).toEqual(['own']);
    await reopened.wal.close();
  });

  it("is refused a writer's log whose last segment was never finished: the segment before it decides", async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io() });
    await wal.commit(events('own'));
    await wal.close();
    fs.writeFileSync(`${dir}/0000000002.wal`, Buffer.alloc(4096)); // killed while creating the next segment
    const opened = Wal.open({ dir, io: io(), replica: true }).then(({ wal }) => wal.close(), (error: unknown) => error);
    expect(await opened).toMatchObject({ code: 'WAL_INVALID_OPTIONS', message: expect.stringMatching(/is not a replica/) });
    expect(segmentNames(dir)).toEqual(['0000000001.wal', '0000000002.wal']);
    const { wal: reopened, events: replayed } = await Wal.open({ dir, io: io() });
    expect(texts(replayed)).toEqual(['own']);
    await reopened.close();
  });

  it('a Replicated record outside a replica segment is refused as malformed', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io(), replica: true });
    await wal.appendReplicated(SOURCE[0]!, 1);
    await wal.close();
    const file = `${dir}/${segmentNames(dir)[0]!}`;
    const bytes = fs.readFileSync(file);
    bytes.writeUInt32LE(0, 20); // clear the replica flag (and fix the header CRC)
    const { crc32 } = await import('node:zlib');
    bytes.writeUInt32LE(crc32(bytes.subarray(0, 28)), 28);
    fs.writeFileSync(file, bytes);
    await expect(Wal.open({ dir, io: io() })).rejects.toMatchObject({ code: 'WAL_MALFORMED', message: /Replicated record in a segment that does not belong to a replica/ });
  });
});
