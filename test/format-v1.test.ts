import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Wal, readWal, replayDir, type WalRecord } from '../src/index.js';
import { RecordKind } from '../src/format/constants.js';
import { BACKENDS } from './helpers/backends.js';
import { ROOT } from './helpers/child.js';
import { runCli } from './helpers/cli.js';
import { expectDense } from './helpers/lsn-spans.js';
import { segmentNames, tempDir } from './helpers/temp-dir.js';

/*
 * test/fixtures/v1-log was written by segwal before format version 2 (commit
 * 024ed2b, io 'js', segmentBytes 1024, codec utf8): six two-event commits, a
 * Checkpoint naming 6, a begin() transaction (append, appendBatch, commit), an
 * aborted one, six one-event commits, and a begin() transaction left open at
 * closeSync. Segment 1 is sealed, segment 2 active; both are version 1, whose
 * commits are TxBegin + MutationBatch + TxCommit.
 */
const FIXTURE = path.join(ROOT, 'test/fixtures/v1-log');

/** What that log replays with its Checkpoint's fence (6): the first two commits are covered. */
const V1_EVENTS = [
  ...[2, 3, 4, 5].flatMap((i) => [`v1 event ${i}a`, `v1 event ${i}b`]),
  'v1 step 1',
  'v1 step 2',
  'v1 step 3',
  ...[6, 7, 8, 9, 10, 11].map((i) => `v1 event ${i}`),
];

function copyOfFixture(): string {
  const dir = tempDir();
  fs.cpSync(FIXTURE, dir, { recursive: true });
  return dir;
}

function formatVersionOf(dir: string, name: string): number {
  return fs.readFileSync(path.join(dir, name)).readUInt32LE(8);
}

describe.each(BACKENDS)('a version 1 log on the $name backend', ({ io }) => {
  it('opens and replays as before, and is continued: its active segment keeps three-record commits, later segments are version 2 with Commit records', async () => {
    const dir = copyOfFixture();
    expect(segmentNames(dir).map((name) => formatVersionOf(dir, name))).toEqual([1, 1]);
    const { wal, events, recovery } = await Wal.open({ dir, io: io(), codec: 'utf8', segmentBytes: 1024 });
    expect(events).toEqual(V1_EVENTS);
    expect(recovery).toMatchObject({ maxLsn: 46, checkpointLsn: 6, transactions: 11, abortedTransactions: 1, incompleteTransactions: 1, tornTail: null });
    const added: string[] = [];
    for (let i = 0; segmentNames(dir).length < 4; i++) {
      added.push(`v2 event ${i}`);
      expect(await wal.commit([`v2 event ${i}`])).toEqual({ beginLsn: 47 + 3 * i, commitLsn: 49 + 3 * i });
    }
    await wal.close();

    const names = segmentNames(dir);
    expect(names.map((name) => formatVersionOf(dir, name))).toEqual([1, 1, 2, 2]);
    const records: WalRecord[] = [];
    for await (const record of readWal(dir)) records.push(record);
    expectDense(records);
    const kindsIn = (segmentId: number) => new Set(records.filter((record) => record.segmentId === segmentId).map((record) => record.kind));
    // The continued version 1 segment took the new commits in three records until it was sealed.
    expect([...kindsIn(2)]).not.toContain(RecordKind.Commit);
    expect(records.filter((record) => record.segmentId === 2).at(-1)).toMatchObject({ kind: RecordKind.TxCommit });
    expect([...kindsIn(3)]).toEqual([RecordKind.Commit]);

    const { wal: reopened, events: all } = await Wal.open({ dir, io: io(), codec: 'utf8', segmentBytes: 1024 });
    expect(all).toEqual([...V1_EVENTS, ...added]);
    await reopened.close();
    expect((await replayDir(dir, { codec: 'utf8' })).events).toEqual([...V1_EVENTS, ...added]);
    const verify = await runCli('verify', dir);
    expect(verify.code, verify.stdout).toBe(0);
    expect(verify.stdout).toMatch(new RegExp(`^ok: 4 segments, ${records.length} records, LSN 1\\.\\.${records.at(-1)!.lsn}`));
  });
});
