import { describe, expect, it } from 'vitest';
import { Wal, WalError, readWal, replayDir } from '../src/index.js';
import { RecordKind } from '../src/format/constants.js';
import { BACKENDS } from './helpers/backends.js';
import { batchPayload, commitRecord, committedTx, craftSegment, writeSegment, type CraftedRecord } from './helpers/craft.js';
import { snapshotFiles, tempDir } from './helpers/temp-dir.js';

const { TxBegin, Mutation, TxCommit, Checkpoint, Commit } = RecordKind;

interface MalformedCase {
  name: string;
  /** Segments as [baseLsn, records, sealed, format version (default: the current one)]; the last one is the active segment. */
  segments: Array<[number, CraftedRecord[], boolean, number?]>;
  /** The file the error must name (1-based segment id). */
  segmentId: number;
  message: RegExp;
  /** Where in that file, and the LSN it names (undefined: the LSN field is above 2^53-1, no LSN to name). */
  offset: number;
  lsn: number | undefined;
}

const twoTx = [...committedTx(1, 'one'), ...committedTx(4, 'two')];

function damagedCopy(records: CraftedRecord[]): Buffer {
  return craftSegment(1, records, true);
}

const CASES: MalformedCase[] = [
  {
    name: 'a segment base LSN not above the previous segment base',
    segments: [[1, twoTx, true], [1, [], false]],
    segmentId: 2,
    message: /base LSN 1 is not above the last record/,
    offset: 0,
    lsn: 1,
  },
  {
    name: 'a segment base LSN not above the last record before it',
    segments: [[1, twoTx, true], [5, [], false]],
    segmentId: 2,
    message: /base LSN 5 is not above the last record before it \(LSN 6\)/,
    offset: 0,
    lsn: 5,
  },
  {
    name: 'a segment base LSN that leaves a gap (records missing)',
    segments: [[1, twoTx, true], [9, committedTx(9, 'later'), false]],
    segmentId: 2,
    message: /leaves a gap after LSN 6/,
    offset: 0,
    lsn: 9,
  },
  {
    name: 'a record LSN below its segment base',
    segments: [[1, twoTx, true], [7, [{ kind: TxBegin, lsn: 6 }], false]],
    segmentId: 2,
    message: /record LSN 6 is not above/,
    offset: 32,
    lsn: 6,
  },
  {
    name: 'a record LSN not above the previous record',
    segments: [[1, [{ kind: TxBegin, lsn: 1 }, { kind: Mutation, lsn: 1, txBeginLsn: 1 }], false]],
    segmentId: 1,
    message: /record LSN 1 is not above the previous LSN 1/,
    offset: 57,
    lsn: 1,
  },
  {
    name: 'a record naming a TxBegin that never came',
    segments: [[1, [{ kind: TxBegin, lsn: 1 }, { kind: Mutation, lsn: 2, txBeginLsn: 99 }], false]],
    segmentId: 1,
    message: /names TxBegin LSN 99, which never came/,
    offset: 57,
    lsn: 2,
  },
  {
    name: 'a record naming a transaction that already ended',
    segments: [[1, [...committedTx(1, 'one'), { kind: Mutation, lsn: 4, txBeginLsn: 1 }], false]],
    segmentId: 1,
    message: /names TxBegin LSN 1, which never came or already ended/,
    offset: 110,
    lsn: 4,
  },
  {
    name: 'a duplicate (nested) TxBegin',
    segments: [[1, [{ kind: TxBegin, lsn: 1 }, { kind: TxBegin, lsn: 2, txBeginLsn: 1 }], false]],
    segmentId: 1,
    message: /duplicate or nested TxBegin/,
    offset: 57,
    lsn: 2,
  },
  {
    name: 'a Checkpoint pointing past itself',
    segments: [[1, [...committedTx(1, 'one'), { kind: Checkpoint, lsn: 4, txBeginLsn: 10 }], false]],
    segmentId: 1,
    message: /snapshot LSN 10, past itself/,
    offset: 110,
    lsn: 4,
  },
  {
    name: 'a Checkpoint below an earlier Checkpoint',
    segments: [
      [1, [...committedTx(1, 'one'), { kind: Checkpoint, lsn: 4, txBeginLsn: 3 }, { kind: Checkpoint, lsn: 5, txBeginLsn: 2 }], false],
    ],
    segmentId: 1,
    message: /below the earlier Checkpoint's 3/,
    offset: 135,
    lsn: 5,
  },
  {
    name: 'a Commit record in a format version 1 segment (Commit records came with version 2)',
    segments: [[1, [commitRecord(1, ['one'])], false, 1]],
    segmentId: 1,
    message: /a Commit record in a format version 1 segment/,
    offset: 32,
    lsn: 3,
  },
  {
    name: 'a Commit record that does not span its begin LSN + 2',
    segments: [[1, [{ kind: Commit, lsn: 4, txBeginLsn: 1, payload: batchPayload(['one']) }], false]],
    segmentId: 1,
    message: /a Commit record spans LSN 1\.\.4, not its begin LSN \+ 2/,
    offset: 32,
    lsn: 4,
  },
  {
    name: 'a Commit record whose begin LSN skips one (records missing)',
    segments: [[1, [...committedTx(1, 'one'), commitRecord(5, ['two'])], false]],
    segmentId: 1,
    message: /record LSN 5 skips LSN 4: records are missing/,
    offset: 32 + 25 + 28 + 25,
    lsn: 5,
  },
  {
    name: 'a Commit record whose begin LSN overlaps the record before it',
    segments: [[1, [...committedTx(1, 'one'), commitRecord(3, ['two'])], false]],
    segmentId: 1,
    message: /record LSN 3 is not above the previous LSN 3/,
    offset: 32 + 25 + 28 + 25,
    lsn: 3,
  },
  {
    name: 'a record LSN above 2^53-1',
    segments: [[2 ** 53 - 1, [{ kind: TxBegin, lsn: 2 ** 53 }], false]],
    segmentId: 1,
    message: /above 2\^53-1/,
    offset: 32,
    lsn: undefined,
  },
];

describe.each(BACKENDS)('open refuses a malformed log on the $name backend', ({ io }) => {
  it.each(CASES)('$name', async ({ segments, segmentId, message, offset, lsn }) => {
    const dir = tempDir();
    segments.forEach(([base, records, sealed, version], index) => writeSegment(dir, index + 1, craftSegment(base, records, sealed, version)));
    const before = snapshotFiles(dir);
    const error = await Wal.open({ dir, io: io() }).then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(WalError);
    const walError = error as WalError;
    expect(walError.code).toBe('WAL_MALFORMED');
    expect(walError.message).toMatch(message);
    expect(walError.file).toMatch(new RegExp(`${String(segmentId).padStart(10, '0')}\\.wal$`));
    expect(walError.offset).toBe(offset);
    expect(walError.lsn).toBe(lsn);
    expect(walError.message).toContain(lsn === undefined ? `offset ${offset}` : `offset ${offset}, LSN ${lsn}`);
    expectUnchanged(dir, before);
    // The lock was released: the refusal can be repeated, it is not WAL_ALREADY_OPEN.
    await expect(Wal.open({ dir, io: io() })).rejects.toMatchObject({ code: 'WAL_MALFORMED' });
  });

  it.each([
    ['a flipped payload byte (CRC mismatch)', (bytes: Buffer) => void (bytes[32 + 25 + 21] = bytes[32 + 25 + 21]! ^ 0x40)],
    ['a flipped kind byte', (bytes: Buffer) => void (bytes[32 + 25 + 4] = 0x7f)],
    ['a length field cut short', (bytes: Buffer) => bytes.writeUInt32LE(7, 32 + 25)],
    ['a zeroed frame in the middle (a hole)', (bytes: Buffer) => bytes.fill(0, 32 + 25, 32 + 25 + 30)],
  ])('damage in a segment that is not the last: %s, naming file, offset and LSN', async (_label, damage) => {
    const dir = tempDir();
    const first = damagedCopy(twoTx);
    damage(first);
    writeSegment(dir, 1, first);
    writeSegment(dir, 2, craftSegment(7, committedTx(7, 'three')));
    const before = snapshotFiles(dir);
    const error = (await Wal.open({ dir, io: io() }).catch((caught: unknown) => caught)) as WalError;
    expect(error).toBeInstanceOf(WalError);
    expect(error.code).toBe('WAL_MALFORMED');
    expect(error.file).toMatch(/0000000001\.wal$/);
    expect(error.offset).toBe(32 + 25);
    expect(error.lsn).toBe(2);
    expect(error.message).toMatch(/not the last.*file .*0000000001\.wal, offset 57, LSN 2/);
    expectUnchanged(dir, before);
  });

  it('a bad header on a segment that is not the last is refused', async () => {
    const dir = tempDir();
    const first = craftSegment(1, twoTx, true);
    first[3] = 0;
    writeSegment(dir, 1, first);
    writeSegment(dir, 2, craftSegment(7, committedTx(7, 'three')));
    await expect(Wal.open({ dir, io: io() })).rejects.toMatchObject({ code: 'WAL_MALFORMED', offset: 0 });
  });

  // No crash leaves a hole in the ids (rotation creates id + 1 after sealing id,
  // truncation deletes oldest first), so a hole is lost records even when the
  // LSNs chain or the segment after it would otherwise be replaced.
  it.each([
    ['the LSNs around it chain', craftSegment(7, committedTx(7, 'three'))],
    ['the segment after it has an unfinished header', Buffer.alloc(0)],
  ])('a hole in the segment ids is refused when %s', async (_label, third) => {
    const dir = tempDir();
    writeSegment(dir, 1, craftSegment(1, twoTx, true));
    writeSegment(dir, 3, third);
    const before = snapshotFiles(dir);
    const error = (await Wal.open({ dir, io: io() }).catch((caught: unknown) => caught)) as WalError;
    expect(error).toBeInstanceOf(WalError);
    expect(error.code).toBe('WAL_MALFORMED');
    expect(error.file).toMatch(/0000000003\.wal$/);
    expect(error.message).toMatch(/segment 2 is missing: segment 3 follows segment 1/);
    expectUnchanged(dir, before);
  });
});

// LSNs are dense (docs/DESIGN.md): a record that skips one inside a segment means
// records are missing. Accepting it would also hand the next commit an LSN the
// log already holds (the scanner's next LSN follows the count, not the record).
describe('a gap in the LSNs inside one segment (records 1, 3, 4)', () => {
  const GAP_OFFSET = 32 + 25; // the header, then the 25-byte TxBegin at LSN 1
  function logWithGap(): { dir: string; file: string; before: Map<string, string> } {
    const dir = tempDir();
    const file = writeSegment(
      dir,
      1,
      craftSegment(1, [
        { kind: TxBegin, lsn: 1 },
        { kind: Mutation, lsn: 3, txBeginLsn: 1, payload: Buffer.from('after the gap') },
        { kind: TxCommit, lsn: 4, txBeginLsn: 1 },
      ]),
    );
    return { dir, file, before: snapshotFiles(dir) };
  }
  const expected = (file: string) => ({
    code: 'WAL_MALFORMED',
    file,
    offset: GAP_OFFSET,
    lsn: 3,
    message: expect.stringMatching(new RegExp(`record LSN 3 skips LSN 2: records are missing.*offset ${GAP_OFFSET}, LSN 3`)),
  });

  it.each(BACKENDS)('is refused by Wal.open on the $name backend, naming file, offset and LSN, and the log is left as it was', async ({ io }) => {
    const { dir, file, before } = logWithGap();
    const error = await Wal.open({ dir, io: io() }).then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(WalError);
    expect(error).toMatchObject(expected(file));
    expect(() => Wal.openSync({ dir, io: io() })).toThrow(expect.objectContaining(expected(file)));
    expectUnchanged(dir, before);
  });

  it('is refused by replayDir, and readWal yields the record before it, then the same error', async () => {
    const { dir, file } = logWithGap();
    await expect(replayDir(dir)).rejects.toMatchObject(expected(file));
    const lsns: number[] = [];
    const read = (async () => {
      for await (const record of readWal(dir)) lsns.push(record.lsn);
    })();
    await expect(read).rejects.toMatchObject(expected(file));
    expect(lsns).toEqual([1]);
  });
});

function expectUnchanged(dir: string, before: Map<string, string>): void {
  const after = snapshotFiles(dir);
  after.delete('.segwal.lock');
  before.delete('.segwal.lock');
  expect(after).toEqual(before);
}
