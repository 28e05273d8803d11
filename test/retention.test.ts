import { describe, expect, it } from 'vitest';
import { Wal, WalError } from '../src/index.js';
import { BACKENDS } from './helpers/backends.js';
import { events, texts } from './helpers/bytes.js';
import fs from 'node:fs';
import { segmentNames, snapshotFiles, tempDir } from './helpers/temp-dir.js';

function baseLsnOf(dir: string, name: string): number {
  return Number(fs.readFileSync(`${dir}/${name}`).readBigUInt64LE(12));
}

describe.each(BACKENDS)('retention holds on the $name backend', ({ io }) => {
  it('truncateUpTo and checkpoint never delete a segment holding a record a hold keeps; advancing or releasing it lets them', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io(), segmentBytes: 1024, sync: 'none' });
    for (let i = 0; i < 10; i++) await wal.commit([Buffer.alloc(150, i)]);
    const kept = wal.nextLsn;
    const hold = wal.retain(kept);
    for (let i = 10; i < 40; i++) await wal.commit([Buffer.alloc(150, i)]);
    expect(segmentNames(dir).length).toBeGreaterThan(6);
    expect(hold.bytes).toBeGreaterThan(0);
    // Only segments wholly below the hold may go: the oldest one left still starts at or below it.
    await wal.truncateUpTo(wal.durableLsn);
    await wal.checkpoint(() => undefined);
    const kept1 = segmentNames(dir);
    expect(baseLsnOf(dir, kept1[0]!)).toBeLessThanOrEqual(kept);
    expect(kept1.length).toBeGreaterThan(5);
    const bytesBefore = hold.bytes;
    hold.advance(wal.nextLsn - 30);
    expect(await wal.truncateUpTo(wal.durableLsn)).toBeGreaterThan(0);
    expect(hold.bytes).toBeLessThan(bytesBefore);
    hold.advance(kept); // never moves back
    expect(hold.fromLsn).toBe(wal.nextLsn - 30 > kept ? wal.nextLsn - 30 : kept);
    hold.release();
    await wal.truncateUpTo(wal.durableLsn);
    expect(segmentNames(dir).length).toBe(2);
    expect(() => wal.retain(-1)).toThrow(expect.objectContaining({ code: 'WAL_INVALID_OPTIONS' }));
    await wal.close();
  });
});

describe.each(BACKENDS)('holding commits (backpressure) on the $name backend', ({ io }) => {
  it('commit() waits in call order while held and goes on when released; commitSync and begin are refused at once', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io(), sync: 'none' });
    await wal.commit(events('before'));
    const open = wal.begin();
    open.append(Buffer.from('begun before the hold'));
    const release = wal.holdCommits('the stream is behind', 60_000);
    const buffer = Buffer.from('first');
    const first = wal.commit([buffer]);
    const second = wal.commit(events('second'));
    buffer.fill(0x21); // the waiting commit copied its bytes
    expect(wal.status()).toMatchObject({ commitHolds: ['the stream is behind'], waitingCommits: 2 });
    expect(() => wal.commitSync(events('blocking'))).toThrow(expect.objectContaining({ code: 'WAL_BACKPRESSURE', message: expect.stringMatching(/the stream is behind/) }));
    expect(() => wal.begin()).toThrow(expect.objectContaining({ code: 'WAL_BACKPRESSURE' }));
    // A transaction already begun may finish: holding it would free nothing.
    const openLsns = await open.commit();
    const nextLsn = wal.nextLsn;
    release();
    const [a, b] = await Promise.all([first, second]);
    expect(a!.beginLsn).toBe(nextLsn);
    expect(b!.beginLsn).toBe(a!.commitLsn + 1);
    expect(wal.status()).toMatchObject({ commitHolds: [], waitingCommits: 0 });
    await wal.close();
    const { wal: reopened, events: replayed } = await Wal.open({ dir, io: io() });
    expect(texts(replayed)).toEqual(['before', 'begun before the hold', 'first', 'second']);
    expect(openLsns.commitLsn).toBeLessThan(a!.beginLsn);
    await reopened.close();
  });

  it('a commit still waiting when the hold times out is refused with WAL_BACKPRESSURE, and nothing of it is written', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io(), sync: 'none' });
    await wal.commit(events('kept'));
    await wal.flush();
    const baseline = snapshotFiles(dir);
    const nextLsn = wal.nextLsn;
    const release = wal.holdCommits('the cluster is down', 30);
    const error = await wal.commit(events('refused')).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(WalError);
    expect(error).toMatchObject({ code: 'WAL_BACKPRESSURE', message: expect.stringMatching(/the cluster is down.*waited 30 ms.*Nothing was written/) });
    expect(wal.nextLsn).toBe(nextLsn);
    expect(snapshotFiles(dir)).toEqual(baseline);
    release();
    await wal.commit(events('after'));
    await wal.close();
  });

  it('a check before commits runs before each new transaction and may hold that very one; removed, it runs no more', async () => {
    const { wal } = await Wal.open({ dir: tempDir(), io: io(), sync: 'none' });
    const limit = 5;
    let checks = 0;
    let release: (() => void) | null = null;
    const remove = wal.checkBeforeCommits(() => {
      checks++;
      if (release === null && wal.nextLsn > 3 * limit) release = wal.holdCommits(`more than ${limit} commits`, 60_000);
    });
    for (let i = 0; i < limit; i++) await wal.commit(events(`admitted ${i}`));
    expect(checks).toBe(limit);
    const lastLsn = wal.nextLsn;
    // The transaction that crosses the limit is the one held: nothing of it is written.
    const held = wal.commit(events('held')).catch((error: unknown) => error);
    expect(wal.status().waitingCommits).toBe(1);
    expect(() => wal.commitSync(events('refused'))).toThrow(expect.objectContaining({ code: 'WAL_BACKPRESSURE' }));
    expect(() => wal.begin()).toThrow(expect.objectContaining({ code: 'WAL_BACKPRESSURE' }));
    expect(wal.nextLsn).toBe(lastLsn);
    remove();
    (release as unknown as () => void)();
    expect(await held).toMatchObject({ commitLsn: lastLsn + 2 });
    const counted = checks;
    await wal.commit(events('unchecked'));
    expect(checks).toBe(counted);
    expect(() => wal.checkBeforeCommits('no' as unknown as () => void)).toThrow(expect.objectContaining({ code: 'WAL_INVALID_OPTIONS' }));
    await wal.close();
    expect(() => wal.checkBeforeCommits(() => undefined)).toThrow(expect.objectContaining({ code: 'WAL_CLOSED' }));
  });

  it('closing refuses the commits still waiting with WAL_CLOSED', async () => {
    const { wal } = await Wal.open({ dir: tempDir(), io: io() });
    wal.holdCommits('held', 60_000);
    const waiting = wal.commit(events('never')).catch((error: unknown) => error);
    await wal.close();
    expect(await waiting).toMatchObject({ code: 'WAL_CLOSED' });
    expect(() => wal.holdCommits('late', 10)).toThrow(expect.objectContaining({ code: 'WAL_CLOSED' }));
  });
});
