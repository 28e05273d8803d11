import { describe, expect, it } from 'vitest';
import { Wal, type WalErrorCode } from '../src/index.js';
import { events, texts } from './helpers/bytes.js';
import { snapshotFiles, tempDir } from './helpers/temp-dir.js';

const MiB = Buffer.alloc(1024 * 1024);

/** Each given after a replicated transaction at LSNs 1..2, so a good next one would be 3..4. */
const BAD: Array<{ what: string; tx: unknown; code: WalErrorCode; message: RegExp }> = [
  { what: 'a null tx', tx: null, code: 'WAL_INVALID_OPTIONS', message: /`tx`: .* got null/ },
  { what: 'a NaN commit LSN', tx: { beginLsn: 3, commitLsn: NaN, events: [] }, code: 'WAL_INVALID_OPTIONS', message: /`tx\.commitLsn`: .* got NaN/ },
  { what: 'an Infinity commit LSN', tx: { beginLsn: 3, commitLsn: Infinity, events: [] }, code: 'WAL_INVALID_OPTIONS', message: /`tx\.commitLsn`/ },
  { what: 'a commit LSN of 2^53', tx: { beginLsn: 3, commitLsn: 2 ** 53, events: [] }, code: 'WAL_INVALID_OPTIONS', message: /`tx\.commitLsn`: expected an integer LSN in 1\.\.2\^53-1/ },
  { what: 'a commit LSN that is not an integer', tx: { beginLsn: 3, commitLsn: 4.5, events: [] }, code: 'WAL_INVALID_OPTIONS', message: /`tx\.commitLsn`/ },
  { what: 'a commit LSN given as a string', tx: { beginLsn: 3, commitLsn: '4', events: [] }, code: 'WAL_INVALID_OPTIONS', message: /`tx\.commitLsn`/ },
  { what: 'a NaN begin LSN', tx: { beginLsn: NaN, commitLsn: 4, events: [] }, code: 'WAL_INVALID_OPTIONS', message: /`tx\.beginLsn`/ },
  { what: 'a negative begin LSN', tx: { beginLsn: -3, commitLsn: 4, events: [] }, code: 'WAL_INVALID_OPTIONS', message: /`tx\.beginLsn`/ },
  { what: 'a commit LSN below the begin LSN', tx: { beginLsn: 5, commitLsn: 4, events: [] }, code: 'WAL_INVALID_OPTIONS', message: /begin LSN 5 and commit LSN 4/ },
  { what: 'events that are not an array', tx: { beginLsn: 3, commitLsn: 4, events: 'hello' }, code: 'WAL_INVALID_EVENT', message: /takes an array of events, got string/ },
  { what: 'string events', tx: { beginLsn: 3, commitLsn: 4, events: [Buffer.from('a'), 'hello'] }, code: 'WAL_INVALID_EVENT', message: /event 1: .* got string/ },
  // 300 views of one MiB: more than one frame holds, without allocating it.
  { what: 'events more than one record holds', tx: { beginLsn: 3, commitLsn: 4, events: Array(300).fill(MiB) }, code: 'WAL_INVALID_EVENT', message: /over the limit/ },
];

describe("a replica's appendReplicated refuses a bad transaction before anything is written", () => {
  it.each(BAD)('$what: $code, nothing written, the next LSN unchanged, the log usable and openable', async ({ tx, code, message }) => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, replica: true, sync: 'per-commit' });
    await wal.appendReplicated({ beginLsn: 1, commitLsn: 2, events: events('first') }, 1);
    const before = snapshotFiles(dir);

    await expect(wal.appendReplicated(tx as never, 2)).rejects.toMatchObject({ name: 'WalError', code, message: expect.stringMatching(message) });
    expect(wal.nextLsn).toBe(3);
    await wal.sync();
    expect(snapshotFiles(dir)).toEqual(before);

    await wal.appendReplicated({ beginLsn: 3, commitLsn: 4, events: events('second') }, 2);
    await wal.close();
    const replayed: unknown[] = [];
    const { wal: reopened } = await Wal.open({ dir, replica: true, onReplay: (batch, lsns) => void replayed.push([lsns.commitLsn, texts(batch)]) });
    expect(replayed).toEqual([
      [2, ['first']],
      [4, ['second']],
    ]);
    await reopened.close();
  });
});
