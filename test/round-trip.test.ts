import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Wal, replayDir } from '../src/index.js';
import { HEADER_BYTES } from '../src/format/constants.js';
import { BACKENDS } from './helpers/backends.js';
import { events, texts } from './helpers/bytes.js';
import { segmentNames, tempDir } from './helpers/temp-dir.js';

describe.each(BACKENDS)('round trip on the $name backend', ({ io }) => {
  it('a fresh open creates segment 1 with base LSN 1 and the lock file; a clean reopen replays nothing', async () => {
    const dir = tempDir();
    const { wal, events: replayed, recovery } = await Wal.open({ dir, io: io() });
    expect(replayed).toEqual([]);
    expect(recovery.maxLsn).toBe(0);
    expect(wal.nextLsn).toBe(1);
    expect(fs.existsSync(`${dir}/.segwal.lock`)).toBe(true);
    expect(segmentNames(dir)).toEqual(['0000000001.wal']);
    const header = fs.readFileSync(`${dir}/0000000001.wal`).subarray(0, HEADER_BYTES);
    expect(header.readBigUInt64LE(12)).toBe(1n);
    await wal.close();

    const again = await Wal.open({ dir, io: io() });
    expect(again.events).toEqual([]);
    expect(again.recovery.transactions).toBe(0);
    expect(again.recovery.tornTail).toBeNull();
    await again.wal.close();
  });

  it('committed transactions replay in commit order with their events byte for byte', async () => {
    const dir = tempDir();
    const binary = Buffer.from([0, 255, 1, 254, 0, 0]);
    const { wal } = await Wal.open({ dir, io: io(), sync: 'per-commit' });
    expect(await wal.commit(events('a', 'b'))).toEqual({ beginLsn: 1, commitLsn: 3 });
    await wal.commit([binary, Buffer.alloc(0)]);
    expect(wal.commitSync(events('c'))).toEqual({ beginLsn: 7, commitLsn: 9 });
    expect(await wal.commit([])).toBeNull();
    await wal.close();

    const { wal: reopened, events: replayed, recovery } = await Wal.open({ dir, io: io() });
    expect(replayed).toEqual([Buffer.from('a'), Buffer.from('b'), binary, Buffer.alloc(0), Buffer.from('c')]);
    expect(recovery).toMatchObject({ maxLsn: 9, transactions: 3, events: 5, tornTail: null });
    expect(reopened.nextLsn).toBe(10);
    expect(reopened.durableLsn).toBe(9);
    await reopened.close();
  });

  it('the caller may reuse its array and its buffers once commit() or commitSync() returns: the log holds what the call saw', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io(), sync: 'group' });
    const small = [Buffer.from('first'), Buffer.from('second')];
    // Larger than the staging buffer a Wal starts with (64 KiB): staged into a grown one.
    const large = [Buffer.alloc(600_000, 'x'), Buffer.alloc(600_000, 'y')];
    const committed = wal.commit(small);
    const committedLarge = wal.commit(large);
    const blocking = [Buffer.from('third')];
    wal.commitSync(blocking);
    for (const batch of [small, large, blocking]) {
      for (const event of batch) event.fill(0);
      batch[0] = Buffer.from('replaced');
      batch.length = 1;
    }
    await committed;
    await committedLarge;
    await wal.close();
    const { wal: reopened, events: replayed } = await Wal.open({ dir, io: io() });
    expect(replayed).toEqual([Buffer.from('first'), Buffer.from('second'), Buffer.alloc(600_000, 'x'), Buffer.alloc(600_000, 'y'), Buffer.from('third')]);
    await reopened.close();
  });

  it('interleaved transactions from several begin()s replay in commit order', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io() });
    const first = wal.begin();
    const second = wal.begin();
    first.append(Buffer.from('first-1'));
    second.append(Buffer.from('second-1'));
    first.appendBatch(events('first-2', 'first-3'));
    second.commit();
    first.append(Buffer.from('first-4'));
    first.commit();
    await wal.sync();
    await wal.close();

    const replays: Array<{ events: string[]; beginLsn: number; commitLsn: number }> = [];
    const { wal: reopened } = await Wal.open({
      dir,
      io: io(),
      onReplay: (batch, tx) => void replays.push({ events: texts(batch), ...tx }),
    });
    expect(replays).toEqual([
      { events: ['second-1'], beginLsn: second.beginLsn, commitLsn: 6 },
      { events: ['first-1', 'first-2', 'first-3', 'first-4'], beginLsn: first.beginLsn, commitLsn: 8 },
    ]);
    await reopened.close();
  });

  it('an aborted transaction and one with no commit at the end of the log are dropped', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io() });
    await wal.commit(events('kept-1'));
    const aborted = wal.begin();
    aborted.append(Buffer.from('aborted'));
    aborted.abort();
    const unfinished = wal.begin();
    unfinished.append(Buffer.from('never committed'));
    await wal.commit(events('kept-2'));
    await wal.sync();
    await wal.close();

    const { wal: reopened, events: replayed, recovery } = await Wal.open({ dir, io: io() });
    expect(texts(replayed)).toEqual(['kept-1', 'kept-2']);
    expect(recovery).toMatchObject({ transactions: 2, abortedTransactions: 1, incompleteTransactions: 1 });
    await reopened.close();
  });

  it('rotates only at transaction boundaries once segmentBytes is reached, seals older segments, and replays a many-segment log whole', async () => {
    const dir = tempDir();
    const segmentBytes = 1024;
    const { wal } = await Wal.open({ dir, io: io(), segmentBytes, sync: 'none' });
    const written: string[] = [];
    for (let i = 0; i < 60; i++) {
      // A multi-step transaction whose records cross the threshold must stay in one segment.
      const tx = wal.begin();
      for (let j = 0; j < 3; j++) {
        const event = `tx${i}-event${j}-${'x'.repeat(40)}`;
        tx.append(Buffer.from(event));
        written.push(event);
      }
      tx.commit();
      await wal.flush();
    }
    await wal.close();

    const names = segmentNames(dir);
    expect(names.length).toBeGreaterThan(5);
    for (const [index, name] of names.entries()) {
      const bytes = fs.readFileSync(`${dir}/${name}`);
      const sealed = bytes.readUInt32LE(20) & 1;
      expect(sealed, name).toBe(index < names.length - 1 ? 1 : 0);
      if (index < names.length - 1) {
        // A sealed segment is trimmed to its data and ends with a TxCommit: rotation waited for the boundary.
        expect(bytes.length).toBeGreaterThanOrEqual(segmentBytes);
        expect(bytes.length).toBeLessThan(segmentBytes + 3 * 100);
        const lastFrameKind = lastFrameKindOf(bytes);
        expect(lastFrameKind, name).toBe(3);
      }
    }
    const { wal: reopened, events: replayed, recovery } = await Wal.open({ dir, io: io(), segmentBytes });
    expect(texts(replayed)).toEqual(written);
    expect(recovery.segments).toBe(names.length);
    await reopened.close();
  });

  it('checkpointLsn fences replay: transactions committed at or below it are skipped; a Checkpoint record is reported', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io() });
    await wal.commit(events('before-1'));
    const fence = (await wal.commit(events('before-2')))!.commitLsn;
    wal.checkpointMarker(fence);
    await wal.commit(events('after'));
    await wal.close();

    const { wal: reopened, events: replayed, recovery } = await Wal.open({ dir, io: io(), checkpointLsn: fence });
    expect(texts(replayed)).toEqual(['after']);
    expect(recovery.checkpointLsnObserved).toBe(fence);
    await reopened.close();

    const { wal: unfenced, events: all, recovery: fromZero } = await Wal.open({ dir, io: io(), checkpointLsn: 0 });
    expect(texts(all)).toEqual(['before-1', 'before-2', 'after']);
    expect(fromZero.checkpointLsn).toBe(0);
    await unfenced.close();
  });

  it("without checkpointLsn, open fences at the last Checkpoint marker ('marker'), as verify does", async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io(), segmentBytes: 1024 });
    for (let i = 0; i < 17; i++) await wal.commit(events(`in the snapshot ${i}`));
    const fence = await wal.checkpoint(() => undefined);
    await wal.commit(events('after the checkpoint'));
    await wal.close();
    expect(fence).toBe(51);

    for (const checkpointLsn of [undefined, 'marker' as const]) {
      const { wal: reopened, events: replayed, recovery } = await Wal.open({ dir, io: io(), checkpointLsn });
      expect(texts(replayed)).toEqual(['after the checkpoint']);
      expect(recovery.checkpointLsn).toBe(fence);
      await reopened.close();
    }
    // A marker several segments back, behind frames larger than the walk's 64 KiB window, is found too.
    const far = tempDir();
    const { wal: big } = await Wal.open({ dir: far, io: io(), segmentBytes: 256 * 1024 });
    for (let i = 0; i < 3; i++) await big.commit([Buffer.alloc(100 * 1024, i)]);
    const farFence = (await big.commit([Buffer.alloc(70 * 1024, 9)]))!.commitLsn;
    big.checkpointMarker(farFence);
    for (let i = 0; i < 12; i++) await big.commit([Buffer.alloc(100 * 1024, 10 + i), Buffer.from(`late ${i}`)]);
    await big.close();
    expect(segmentNames(far).length).toBeGreaterThan(3);
    const { wal: farReopened, events: late, recovery: farRecovery } = await Wal.open({ dir: far, io: io(), segmentBytes: 256 * 1024 });
    expect(farRecovery.checkpointLsn).toBe(farFence);
    expect(texts(late.filter((event) => event.length < 100)).length).toBe(12);
    expect(late.length).toBe(24);
    await farReopened.close();

    // Markers in several segments, walked four at a time: the newest one is the fence, wherever it lies.
    for (const markedCommits of [[3], [3, 40], [12, 13, 14], [50], [1, 20, 30, 44], [59]]) {
      const many = tempDir();
      const { wal: marking } = await Wal.open({ dir: many, io: io(), segmentBytes: 1024 });
      let newestFence = 0;
      for (let i = 0; i < 60; i++) {
        const { commitLsn } = (await marking.commit(events(`commit ${i} ${'m'.repeat(200)}`)))!;
        if (markedCommits.includes(i)) {
          marking.checkpointMarker(commitLsn);
          newestFence = commitLsn;
        }
      }
      await marking.commit(events('last'));
      await marking.close();
      expect(segmentNames(many).length).toBeGreaterThan(12);
      const { wal: reread, recovery: found } = await Wal.open({ dir: many, io: io(), segmentBytes: 1024 });
      expect(found.checkpointLsn, JSON.stringify(markedCommits)).toBe(newestFence);
      await reread.close();
      const blocking = Wal.openSync({ dir: many, io: io(), segmentBytes: 1024 });
      expect(blocking.recovery.checkpointLsn, JSON.stringify(markedCommits)).toBe(newestFence);
      blocking.wal.closeSync();
    }

    // A log with no marker fences at 0: everything replays.
    const fresh = tempDir();
    const { wal: unmarked } = await Wal.open({ dir: fresh, io: io() });
    await unmarked.commit(events('one'));
    await unmarked.close();
    const { wal: reopened, events: replayed, recovery } = await Wal.open({ dir: fresh, io: io() });
    expect(texts(replayed)).toEqual(['one']);
    expect(recovery.checkpointLsn).toBe(0);
    await reopened.close();
  });
});

describe.each(BACKENDS)('replay with onReplay on the $name backend', ({ io }) => {
  it('hands over intact events of a transaction that spans segments, though segments are read into one reused buffer', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io(), segmentBytes: 1024 });
    const spanning = wal.begin();
    spanning.append(Buffer.from('first part, written in segment 1'));
    const others: string[] = [];
    for (let i = 0; i < 30; i++) {
      const event = `other ${i} ${'y'.repeat(60)}`;
      others.push(event);
      await wal.commit([Buffer.from(event)]);
    }
    spanning.append(Buffer.from('second part, written much later'));
    spanning.commit();
    await wal.close();
    expect(segmentNames(dir).length).toBeGreaterThan(2);

    const seen: string[][] = [];
    const { wal: reopened } = await Wal.open({ dir, io: io(), onReplay: (batch) => void seen.push(texts(batch)) });
    await reopened.close();
    expect(seen.at(-1)).toEqual(['first part, written in segment 1', 'second part, written much later']);
    expect(seen.slice(0, -1).flat()).toEqual(others);
    const { events: collected } = await replayDir(dir);
    expect(texts(collected)).toEqual([...others, 'first part, written in segment 1', 'second part, written much later']);
  });
});

/** The kind byte of the last frame, found by walking frames from the header. */
function lastFrameKindOf(segment: Buffer): number {
  let offset = HEADER_BYTES;
  let kind = 0;
  while (offset + 4 <= segment.length) {
    const length = segment.readUInt32LE(offset);
    if (length === 0) break;
    kind = segment[offset + 4]!;
    offset += length;
  }
  return kind;
}


