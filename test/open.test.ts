import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Wal, WalError } from '../src/index.js';
import { RecordKind } from '../src/format/constants.js';
import { BACKENDS } from './helpers/backends.js';
import { FaultIo } from './helpers/fault-io.js';
import { events, texts } from './helpers/bytes.js';
import { runModule } from './helpers/child.js';
import { committedTx, craftSegment, segmentPath, writeSegment } from './helpers/craft.js';
import { segmentNames, tempDir } from './helpers/temp-dir.js';

async function openError(promise: Promise<unknown>): Promise<WalError> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(WalError);
  return error as WalError;
}

describe.each(BACKENDS)('open on the $name backend', ({ name, io }) => {
  it('a second open of the same directory in this process fails with WAL_ALREADY_OPEN, and works after close', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io() });
    const error = await openError(Wal.open({ dir, io: io() }));
    expect(error.code).toBe('WAL_ALREADY_OPEN');
    expect(error.message).toContain(dir);
    expect(() => Wal.openSync({ dir, io: io() })).toThrow(expect.objectContaining({ code: 'WAL_ALREADY_OPEN' }));
    await wal.close();
    const again = Wal.openSync({ dir, io: io() });
    again.wal.closeSync();
  });

  it('a second open from a child process fails with WAL_ALREADY_OPEN while the log is open, and works after close', async () => {
    const dir = tempDir();
    const childOpen = `
      try {
        const { wal } = await segwal.Wal.open({ dir: process.argv[1], io: ${JSON.stringify(name)} });
        await wal.close();
        console.log('opened');
      } catch (error) {
        console.log(error.code);
      }`;
    const { wal } = await Wal.open({ dir, io: io() });
    expect((await runModule(childOpen, [dir])).stdout.trim()).toBe('WAL_ALREADY_OPEN');
    await wal.close();
    expect((await runModule(childOpen, [dir])).stdout.trim()).toBe('opened');
  });

  it('a crash after the old segment was sealed but before the new one existed opens a new active segment', async () => {
    const dir = tempDir();
    writeSegment(dir, 1, craftSegment(1, [...committedTx(1, 'one'), ...committedTx(4, 'two')], true));
    const { wal, events: replayed, recovery } = await Wal.open({ dir, io: io() });
    expect(texts(replayed)).toEqual(['one', 'two']);
    expect(recovery.repairs.length).toBe(1);
    expect(segmentNames(dir)).toEqual(['0000000001.wal', '0000000002.wal']);
    expect(wal.activeSegmentId).toBe(2);
    await wal.commit(events('three'));
    await wal.close();
    const { wal: reopened, events: all, recovery: clean } = await Wal.open({ dir, io: io() });
    expect(texts(all)).toEqual(['one', 'two', 'three']);
    expect(clean.repairs).toEqual([]);
    await reopened.close();
  });

  it.each([
    ['missing (an empty file)', Buffer.alloc(0)],
    ['all zeros', Buffer.alloc(32)],
    ['partial', craftSegment(7, []).subarray(0, 13)],
    ['zero with a zero-filled preallocated tail', Buffer.alloc(4096)],
  ])('a new last segment whose header is %s and holds no record is replaced', async (_label, newSegment) => {
    const dir = tempDir();
    writeSegment(dir, 1, craftSegment(1, [...committedTx(1, 'one'), ...committedTx(4, 'two')], true));
    writeSegment(dir, 2, newSegment);
    const { wal, events: replayed, recovery } = await Wal.open({ dir, io: io() });
    expect(texts(replayed)).toEqual(['one', 'two']);
    expect(recovery.repairs.length).toBe(1);
    expect(wal.nextLsn).toBe(7);
    await wal.commit(events('three'));
    await wal.close();
    const header = fs.readFileSync(segmentPath(dir, 2)).subarray(0, 32);
    expect(header.subarray(0, 6).toString()).toBe('SEGWAL');
    expect(header.readBigUInt64LE(12)).toBe(7n);
    const { wal: reopened, events: all } = await Wal.open({ dir, io: io() });
    expect(texts(all)).toEqual(['one', 'two', 'three']);
    await reopened.close();
  });

  it('files that are not segments are ignored and never deleted', async () => {
    const dir = tempDir();
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(`${dir}/README`, 'keep me');
    fs.writeFileSync(`${dir}/0000000009.wal.tmp`, 'stray');
    const { wal } = await Wal.open({ dir, io: io(), segmentBytes: 1024 });
    for (let i = 0; i < 40; i++) await wal.commit([Buffer.alloc(100, i)]);
    await wal.truncateUpTo(wal.durableLsn);
    await wal.close();
    expect(fs.readFileSync(`${dir}/README`, 'utf8')).toBe('keep me');
    expect(fs.readFileSync(`${dir}/0000000009.wal.tmp`, 'utf8')).toBe('stray');
  });

  it('open replays with onReplay once per committed transaction and then returns no events', async () => {
    const dir = tempDir();
    writeSegment(dir, 1, craftSegment(1, [...committedTx(1, 'one'), ...committedTx(4, 'two'), { kind: RecordKind.TxBegin, lsn: 7 }]));
    const seen: Array<[string[], number, number]> = [];
    const { wal, events: replayed } = await Wal.open({
      dir,
      io: io(),
      onReplay: (batch, tx) => void seen.push([texts(batch), tx.beginLsn, tx.commitLsn]),
    });
    expect(replayed).toEqual([]);
    expect(seen).toEqual([
      [['one'], 1, 3],
      [['two'], 4, 6],
    ]);
    expect(wal.nextLsn).toBe(8);
    await wal.close();
  });
});

describe.each(BACKENDS)('the spare segment on the $name backend', ({ io }) => {
  it('is prepared ahead of rotation, adopted by it (rename, no creation), and removed at close', async () => {
    const dir = tempDir();
    const counted = new FaultIo(io());
    const { wal } = await Wal.open({ dir, io: counted, segmentBytes: 4096 });
    const spare = `${dir}/.segwal.next`;
    await expect.poll(() => fs.existsSync(spare) && fs.statSync(spare).size === 4096, { timeout: 2000, interval: 5 }).toBe(true);
    await expect.poll(() => counted.count('datasync') >= 2, { timeout: 2000, interval: 5 }).toBe(true);
    for (let i = 0; i < 30; i++) await wal.commit([Buffer.alloc(200, i)]);
    expect(segmentNames(dir).length).toBeGreaterThan(1);
    expect(counted.count('rename')).toBeGreaterThan(0);
    // Every segment after the first came from a spare: renamed, not created in place.
    expect(counted.count('rename')).toBe(segmentNames(dir).length - 1);
    // Opens: segment 1, then one spare per rotation plus at most one more in the works.
    expect(counted.count('openSegment')).toBeLessThanOrEqual(counted.count('rename') + 2);
    await wal.close();
    expect(fs.existsSync(spare)).toBe(false);
    const { wal: reopened, events: replayed } = await Wal.open({ dir, io: io() });
    expect(replayed.length).toBe(30);
    await reopened.close();
  });

  it('a stale spare left by a crash is removed at open and never replayed', async () => {
    const dir = tempDir();
    writeSegment(dir, 1, craftSegment(1, committedTx(1, 'one')));
    fs.writeFileSync(`${dir}/.segwal.next`, craftSegment(4, committedTx(4, 'never a segment')));
    const { wal, events: replayed } = Wal.openSync({ dir, io: io() });
    expect(texts(replayed)).toEqual(['one']);
    expect(fs.existsSync(`${dir}/.segwal.next`)).toBe(false);
    wal.closeSync();
  });
});
