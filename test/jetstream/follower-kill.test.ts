import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { Wal } from '../../src/index.js';
import { restoreFromStream, ship } from '../../src/jetstream/index.js';
import { DIST_ENTRY } from '../helpers/child.js';
import { committed, expectPrefixOf, expectSameTransactions, replayed } from '../helpers/copies.js';
import { runUntilKilled } from '../helpers/kill-child.js';
import { useCluster } from '../helpers/nats-cluster.js';
import { mulberry32, testSeed } from '../helpers/random.js';
import { tempDir } from '../helpers/temp-dir.js';
import { keepCommitting } from '../helpers/writer.js';

/*
 * kill -9 of the follower (issue 14). A child process (follow-child.mjs, run
 * against dist/) follows the stream into a replica directory while this
 * process writes and ships the primary; the parent SIGKILLs the child at a
 * random moment (seeded) and starts it again on the same replica, which
 * resumes from its own last record. After every kill the replica holds the
 * primary's first transactions exactly, and every commit the child reported
 * applied. At the end the replica is brought to the stream's end and equals
 * the primary: the same transactions at the same LSNs, and the same replay.
 */

const FULL = process.env.SEGWAL_RELIABILITY === 'full';
const KILLS = FULL ? 50 : 4;
const TIMEOUT = FULL ? 3_600_000 : 90_000;
const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'follow-child.mjs');

const cluster = useCluster({ nodes: 3 });

const totals = { kills: 0, transactionsChecked: 0, losses: 0 };
afterAll(() => {
  console.log(`follower kill summary: kills=${totals.kills} transactions checked=${totals.transactionsChecked} losses=${totals.losses}`);
});

it(
  `a follower killed -9 ${KILLS} times resumes from its own log: the replica is always the primary's first transactions, and at the end the primary`,
  async () => {
    const seed = testSeed('follower kill', 'SEGWAL_FOLLOWER_KILL_SEED', () => randomInt(2 ** 32));
    const random = mulberry32(seed);
    const stream = 'kill-follower';
    const dir = tempDir();
    const replica = path.join(tempDir(), 'replica');
    const { wal } = await Wal.open({ dir, sync: { mode: 'group', intervalMs: 5 }, segmentBytes: 1024 * 1024 });
    const shipper = await ship(wal, { servers: cluster().servers, stream, maxMessageBytes: 64 * 1024 });
    const writer = keepCommitting(wal, random, { largeOneIn: 20 });
    let kills = 0;
    let applied = 0;
    try {
      // Something to follow from the start.
      await shipper.acknowledged((await wal.commit([Buffer.from('first')]))!.commitLsn);
      for (let run = 1; run <= KILLS; run++) {
        const fromSpawn = random() < 0.125;
        const delay = 20 + Math.floor(random() * 700);
        const context = `seed ${seed}, run ${run} (kill ${delay} ms after ${fromSpawn ? 'spawn' : 'ready'})`;
        const journal = `${replica}.journal-${run}`;
        const args = [CHILD, DIST_ENTRY, replica, journal, JSON.stringify({ servers: cluster().servers, stream })];
        const result = await runUntilKilled(args, journal, delay, fromSpawn);
        expect(result.killed, `${context}: the child exited by itself (code ${result.code}): ${result.stderr}`).toBe(true);
        kills++;
        for (const line of result.lines) if (line.startsWith('A ')) applied = Math.max(applied, Number(line.slice(2)));

        // A child killed before it opened the replica left no directory.
        const copy = fs.existsSync(replica) ? await committed(replica) : [];
        expectPrefixOf(copy, await committed(dir), `${context}: the replica against the primary`);
        expect(copy.at(-1)?.commitLsn ?? 0, `${context}: what the child reported applied`).toBeGreaterThanOrEqual(applied);
      }
    } finally {
      await writer.stop();
    }
    const source = await committed(dir);
    await shipper.acknowledged(source.at(-1)!.commitLsn);
    await shipper.close();
    await wal.close();

    expect(await restoreFromStream({ servers: cluster().servers, stream, dir: replica })).toMatchObject({ appliedCommitLsn: source.at(-1)!.commitLsn });
    const copy = await committed(replica);
    totals.kills += kills;
    totals.transactionsChecked += source.length;
    totals.losses += Math.max(0, source.length - copy.length);
    expectSameTransactions(copy, source, `seed ${seed}: the replica after ${kills} kills`);
    expectSameTransactions(await replayed(replica, true), await replayed(dir, false), `seed ${seed}: the replica's replay`);
    console.log(`follower kill: kills=${kills} transactions=${source.length} applied before the end=${applied} seed=${seed}`);
    expect(applied, 'commits the killed children reported applied').toBeGreaterThan(0);
    expect(kills).toBe(KILLS);
  },
  TIMEOUT,
);
