import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Wal, readTransactions, type CommittedTransaction } from '../../src/index.js';
import { DIST_ENTRY } from '../helpers/child.js';
import { mulberry32, testSeed } from '../helpers/random.js';
import { tempDir } from '../helpers/temp-dir.js';

/*
 * A durable-only reader following a log while its writer is killed with
 * SIGKILL (issue 13): it never yields a transaction that a reopen of the log
 * does not have, with the same LSNs and events. The writer is a child process
 * committing in group mode (some commits `durable: true`) across rotations;
 * the reader runs here, fdatasyncing what it reads before yielding it.
 */

const FULL = process.env.SEGWAL_RELIABILITY === 'full';
const KILLS = FULL ? 40 : 3;

const WRITER = `
  const { Wal } = await import(process.argv[1]);
  const { wal } = await Wal.open({ dir: process.argv[2], io: process.argv[3], sync: { mode: 'group', intervalMs: 5 }, segmentBytes: 4096 });
  process.stdout.write('ready\\n');
  for (let i = 0; ; i++) {
    const events = Array.from({ length: 1 + (i % 3) }, (_, k) => Buffer.from('w' + i + '.' + k + ':' + 'x'.repeat((i * 7 + k) % 80)));
    await wal.commit(events, i % 4 === 0 ? { durable: true } : {});
  }
`;

function startWriter(dir: string, io: string) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', WRITER, DIST_ENTRY, dir, io], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the writer exited with ${code} before it was ready`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { ready, kill: () => (child.kill('SIGKILL'), exited) };
}

const shape = (tx: { beginLsn: number; commitLsn: number; events: Buffer[] }) => ({
  beginLsn: tx.beginLsn,
  commitLsn: tx.commitLsn,
  events: tx.events.map((event) => event.toString()),
});

describe.each(['native', 'js'])('a durable-only follower of a writer killed with SIGKILL (io %s)', (io) => {
  it(`never yields a transaction the reopened log does not have (${KILLS} kills)`, async () => {
    const seed = testSeed(`reader-kill ${io}`, 'SEGWAL_READER_KILL_SEED', () => randomInt(2 ** 31), 2 ** 31);
    const random = mulberry32(seed);
    let yieldedTotal = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      const dir = tempDir();
      const writer = startWriter(dir, io);
      await writer.ready;
      const controller = new AbortController();
      const yielded: Array<CommittedTransaction<Buffer>> = [];
      const following = (async () => {
        for await (const tx of readTransactions(dir, { follow: true, durableOnly: true, fromLsn: 1, pollMs: 2, signal: controller.signal })) yielded.push(tx);
      })();
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.floor(random() * 250)));
      await writer.kill();
      // Let the follower read what the killed writer left, then stop it.
      await new Promise((resolve) => setTimeout(resolve, 60));
      controller.abort();
      await following;
      const { wal, events } = await Wal.open({ dir, io: io as 'native' | 'js', checkpointLsn: 0 });
      const replayed: Array<ReturnType<typeof shape>> = [];
      await wal.close();
      for await (const tx of readTransactions(dir, { fromLsn: 1 })) replayed.push(shape(tx));
      const byCommit = new Map(replayed.map((tx) => [tx.commitLsn, tx]));
      for (const tx of yielded) expect(byCommit.get(tx.commitLsn), `seed ${seed}, kill ${kill}, commit ${tx.commitLsn}`).toEqual(shape(tx));
      expect(events.length).toBeGreaterThanOrEqual(yielded.reduce((sum, tx) => sum + tx.events.length, 0));
      yieldedTotal += yielded.length;
    }
    expect(yieldedTotal).toBeGreaterThan(0);
  }, 120_000);
});
