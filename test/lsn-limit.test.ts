import { describe, expect, it } from 'vitest';
import { Wal } from '../src/index.js';
import { MAX_LSN } from '../src/format/constants.js';
import { BACKENDS } from './helpers/backends.js';
import { events, texts } from './helpers/bytes.js';
import { committedTx, craftSegment, writeSegment } from './helpers/craft.js';
import { snapshotFiles, tempDir } from './helpers/temp-dir.js';

describe.each(BACKENDS)('the LSN limit on the $name backend', ({ io }) => {
  it('allocation past 2^53-1 fails with WAL_LSN_EXHAUSTED and writes nothing', async () => {
    const dir = tempDir();
    // The last committed transaction ends 4 LSNs below the limit: one more commit (3 LSNs) fits, the next does not.
    const base = MAX_LSN - 6;
    writeSegment(dir, 1, craftSegment(base, committedTx(base, 'near the end')));
    const { wal, events: replayed } = await Wal.open({ dir, io: io(), sync: 'per-commit' });
    expect(texts(replayed)).toEqual(['near the end']);
    expect(wal.nextLsn).toBe(MAX_LSN - 3);
    expect(await wal.commit(events('last one'))).toEqual({ beginLsn: MAX_LSN - 3, commitLsn: MAX_LSN - 1 });
    const before = snapshotFiles(dir);
    await expect(wal.commit(events('one too many'))).rejects.toMatchObject({ code: 'WAL_LSN_EXHAUSTED' });
    expect(() => wal.commitSync(events('one too many'))).toThrow(expect.objectContaining({ code: 'WAL_LSN_EXHAUSTED' }));
    // A single record still fits: MAX_LSN itself is a valid LSN.
    expect(wal.checkpointMarker(MAX_LSN - 1)).toBe(MAX_LSN);
    expect(() => wal.begin()).toThrow(expect.objectContaining({ code: 'WAL_LSN_EXHAUSTED' }));
    expect(snapshotFiles(dir)).toEqual(before);
    await wal.close();

    // The marker names MAX_LSN - 1: everything is in "the snapshot" by default; fence 0 replays it all.
    const { wal: reopened, events: all, recovery } = await Wal.open({ dir, io: io(), checkpointLsn: 0 });
    expect(texts(all)).toEqual(['near the end', 'last one']);
    expect(recovery.maxLsn).toBe(MAX_LSN);
    expect(() => reopened.begin()).toThrow(expect.objectContaining({ code: 'WAL_LSN_EXHAUSTED' }));
    await reopened.close();
  });
});
