import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Wal } from '../../src/index.js';
import { ship, shipDirectory, type JetStreamConnection, type ShipOptions } from '../../src/jetstream/index.js';
import { DIST_ENTRY } from '../helpers/child.js';
import { CommittedReader, expectSameTransactions } from '../helpers/copies.js';
import { useConnection } from '../helpers/jetstream.js';
import { runUntilKilled, startChild } from '../helpers/kill-child.js';
import { useCluster } from '../helpers/nats-cluster.js';
import { mulberry32, testSeed } from '../helpers/random.js';
import { ShippedReader } from '../helpers/shipped.js';
import { tempDir } from '../helpers/temp-dir.js';

/*
 * kill -9 of the shipper (issue 14, "Prove it on a real cluster").
 *
 * A child process (ship-child.mjs, run against dist/) commits continuously
 * and ships what is durable; the parent SIGKILLs it at a random moment
 * (seeded), starts it again on the same log and the same stream, and so on.
 * After every kill the stream, read back whole and chain-checked, must be
 * the first transactions of the log, exactly (nothing duplicated, reordered
 * or altered), and hold every commit the child was told the stream had
 * acknowledged. At the end a clean shipper ships the rest, and the stream
 * must equal the log. The same with shipDirectory in a process of its own,
 * while another process writes.
 *
 * The cluster is left alone here (the leader kill has its own file), so no
 * divergence may show: the journal says how many the child saw.
 */

const FULL = process.env.SEGWAL_RELIABILITY === 'full';
const KILLS = FULL ? 200 : 6;
const DIR_KILLS = FULL ? 50 : 3;
const TIMEOUT = FULL ? 3_600_000 : 120_000;
const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'ship-child.mjs');
/** Small enough that the child's large transactions go in several chunks. */
const MAX_MESSAGE_BYTES = 64 * 1024;

const cluster = useCluster({ nodes: 3 });
const connection = useConnection(cluster);

const totals = { kills: 0, transactionsChecked: 0, messages: 0, losses: 0 };
afterAll(() => {
  console.log(
    `shipper kill summary: kills=${totals.kills} transactions checked=${totals.transactionsChecked} messages=${totals.messages} losses=${totals.losses}`,
  );
});

/** What the journals said: the highest commit LSN the stream acknowledged, and any divergence a child saw. */
function acknowledgements(lines: string[]): { acknowledged: number; divergences: number } {
  let acknowledged = 0;
  let divergences = 0;
  for (const line of lines) {
    const [tag, lsn, seen] = line.split(' ');
    if (tag !== 'S') continue;
    acknowledged = Math.max(acknowledged, Number(lsn));
    divergences = Math.max(divergences, Number(seen));
  }
  return { acknowledged, divergences };
}

async function streamExists(connection: JetStreamConnection, stream: string): Promise<boolean> {
  const names = await connection.jsm.streams.names().next();
  return names.includes(stream);
}

/**
 * Kills the shipping child `kills` times, checking the stream after each
 * kill, then ships the rest with `finish` and checks the stream equals the log.
 */
async function killLoop(options: {
  label: string;
  role: 'ship' | 'ship-dir';
  dir: string;
  stream: string;
  kills: number;
  /** Stops the log's writer, when it is another process, before the clean ship. */
  stopWriting?: () => Promise<void>;
  finish: (shipOptions: ShipOptions, lastCommitLsn: number) => Promise<{ divergences: number }>;
}): Promise<void> {
  const { label, role, dir, stream, kills } = options;
  // A first child killed before its Wal made the directory leaves an empty log, as an operator's own directory would be.
  fs.mkdirSync(dir, { recursive: true });
  const seed = testSeed(label, 'SEGWAL_SHIP_KILL_SEED', () => randomInt(2 ** 32));
  const random = mulberry32(seed);
  const shipOptions: ShipOptions = { servers: cluster().servers, stream, maxMessageBytes: MAX_MESSAGE_BYTES };
  const reader = new ShippedReader(connection(), stream);
  const log = new CommittedReader(dir);
  let acknowledged = 0;
  let killed = 0;
  for (let run = 1; run <= kills; run++) {
    const fromSpawn = random() < 0.125;
    const delay = 20 + Math.floor(random() * 700);
    const childSeed = Math.floor(random() * 2 ** 31);
    const context = `${label}, seed ${seed}, run ${run} (child seed ${childSeed}, kill ${delay} ms after ${fromSpawn ? 'spawn' : 'ready'})`;
    const journal = `${dir}.journal-${run}`;
    const args = [CHILD, DIST_ENTRY, role, dir, journal, String(run), String(childSeed), JSON.stringify(shipOptions)];
    const result = await runUntilKilled(args, journal, delay, fromSpawn);
    expect(result.killed, `${context}: the child exited by itself (code ${result.code}): ${result.stderr}`).toBe(true);
    killed++;
    const journaled = acknowledgements(result.lines);
    expect(journaled.divergences, `${context}: divergences the child saw`).toBe(0);
    acknowledged = Math.max(acknowledged, journaled.acknowledged);

    await log.catchUp();
    const source = log.transactions;
    // A first child killed before its shipper made the stream leaves none, and can have had nothing acknowledged (checked below).
    const added = (await streamExists(connection(), stream)) ? await reader.catchUp() : [];
    const verified = reader.transactions.length - added.length;
    // What was checked after earlier kills stays as it was (read once); the new part against the log.
    expectSameTransactions(added, source.slice(verified, reader.transactions.length), `${context}: the stream against the log`);
    expect(reader.transactions.length, `${context}: the stream holds more than the log`).toBeLessThanOrEqual(source.length);
    const mustHold = source.filter((tx) => tx.commitLsn <= acknowledged).length;
    expect(reader.transactions.length, `${context}: transactions the stream acknowledged up to commit LSN ${acknowledged}`).toBeGreaterThanOrEqual(mustHold);
  }

  await options.stopWriting?.();
  await log.catchUp();
  const source = log.transactions;
  expect(source.length, 'transactions committed').toBeGreaterThan(0);
  const finished = await options.finish(shipOptions, source.at(-1)!.commitLsn);
  expect(finished.divergences).toBe(0);
  await reader.catchUp();
  const lost = source.length - reader.transactions.length;
  expectSameTransactions(reader.transactions, source, `${label}, seed ${seed}: the stream after a clean ship`);
  expect(reader.logIds.size).toBe(1);
  // The checks above saw what they are about: acknowledgements under kills, and transactions in chunks.
  expect(acknowledged, 'the highest commit LSN acknowledged to a killed child').toBeGreaterThan(0);
  expect(reader.chunkedTransactions, 'transactions shipped in chunks').toBeGreaterThan(0);
  totals.kills += killed;
  totals.transactionsChecked += source.length;
  totals.messages += reader.messages;
  totals.losses += lost;
  console.log(`${label}: kills=${killed} transactions=${source.length} messages=${reader.messages} seed=${seed}`);
  expect(killed).toBe(kills);
}

describe('kill -9 of the shipper', () => {
  it(
    `ship(wal) in the writer's process, killed ${KILLS} times: the stream is always the log's first transactions, and at the end the log`,
    async () => {
      const dir = path.join(tempDir('segwal-ship-kill'), 'log');
      await killLoop({
        label: 'ship(wal) kill',
        role: 'ship',
        dir,
        stream: 'kill-ship',
        kills: KILLS,
        finish: async (shipOptions, lastCommitLsn) => {
          const { wal } = await Wal.open({ dir });
          const shipper = await ship(wal, shipOptions);
          await shipper.acknowledged(lastCommitLsn);
          const { divergences } = shipper.status();
          await shipper.close();
          await wal.close();
          return { divergences };
        },
      });
    },
    TIMEOUT,
  );

  it(
    `shipDirectory in a process of its own, killed ${DIR_KILLS} times while another process writes: the same`,
    async () => {
      const dir = path.join(tempDir('segwal-ship-dir-kill'), 'log');
      const writerJournal = `${dir}.journal-writer`;
      const writer = startChild([CHILD, DIST_ENTRY, 'write', dir, writerJournal, '0', String(randomInt(2 ** 31)), '{}'], writerJournal);
      await writer.ready;
      try {
        await killLoop({
          label: 'shipDirectory kill',
          role: 'ship-dir',
          dir,
          stream: 'kill-ship-dir',
          kills: DIR_KILLS,
          stopWriting: async () => {
            writer.kill();
            await writer.ended;
          },
          finish: async (shipOptions, lastCommitLsn) => {
            const shipper = await shipDirectory(dir, shipOptions);
            await shipper.acknowledged(lastCommitLsn);
            const { divergences } = shipper.status();
            await shipper.close();
            return { divergences };
          },
        });
      } finally {
        writer.kill();
        await writer.ended;
      }
    },
    TIMEOUT,
  );
});
