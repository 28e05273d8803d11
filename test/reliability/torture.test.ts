import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Wal } from '../../src/index.js';
import type { SyncMode } from '../../src/types.js';
import { DIST_ENTRY } from '../helpers/child.js';
import { runUntilKilled } from '../helpers/kill-child.js';
import { mulberry32, testSeed } from '../helpers/random.js';

/*
 * kill -9 torture (issue 5).
 *
 * A child process (torture-child.mjs, run against dist/) opens a Wal and runs
 * 2-4 concurrent writers: transactions of 1..5 numbered events, through
 * commit() (some with { durable: true }) or begin()/append/appendBatch/commit +
 * flush()/sync(), with occasional checkpoint() (the fence goes to a file, the
 * "snapshot") and truncateUpTo(fence). It journals every attempt and every
 * acknowledgement to a file (one write(2) each) before going on. The parent SIGKILLs it after a
 * random delay, reopens the directory with Wal.open and checks the log against
 * what the child said. The same directory is killed again and again, so each
 * run also exercises recovery of a log that was recovered before.
 *
 * What a kill may take: nothing the process handed to the OS. So in every
 * sync mode every acknowledged commit (written or durable) must be there.
 *
 * The checkpoint fence: replay emits exactly the transactions whose TxCommit
 * LSN is above checkpointLsn (docs/DURABILITY.md). The child writes the fence
 * file (tmp + rename) inside checkpoint()'s writeSnapshot, i.e. before the
 * marker and before truncateUpTo may delete anything at or below it; it only
 * ever calls truncateUpTo with a fence already in the file. So the parent
 * opens with checkpointLsn = the fence in the file (0 if none), and:
 *   - an acknowledged transaction whose commitLsn <= fence is covered by the
 *     snapshot and must NOT be replayed (we check it is not);
 *   - every acknowledged transaction whose commitLsn > fence must be replayed,
 *     with the same commitLsn.
 * An unacknowledged transaction may or may not be there (its bytes may have
 * reached the OS before the kill), but if it is, it is whole and exactly as
 * attempted.
 */

const FULL = process.env.SEGWAL_RELIABILITY === 'full';
/** 6 combinations: 9 kills each in npm test (54), 167 each in full (1002). */
const KILLS_PER_COMBO = FULL ? 167 : 9;
const TIMEOUT = FULL ? 3_600_000 : 120_000;
const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'torture-child.mjs');
const MODES: SyncMode[] = ['per-commit', 'group', 'none'];
const IOS = ['native', 'js'] as const;

/** Must match torture-child.mjs byte for byte. */
function payloadOf(writer: string, seq: number): Buffer {
  const head = `${writer}:${seq}:`;
  const fill = (seq * 7 + writer.length * 13) % 90;
  let body = '';
  for (let i = 0; i < fill; i++) body += String.fromCharCode(97 + ((seq + i) % 26));
  return Buffer.from(head + body);
}

interface Ack {
  writer: string;
  seq: number;
  n: number;
  commitLsn: number;
  durable: boolean;
}

/** acksChecked counts (acknowledgement, reopen) pairs: an ack is checked again after every later kill. */
const totals = { kills: 0, acksChecked: 0, losses: 0, txsReplayed: 0 };

afterAll(() => {
  console.log(
    `torture summary: kills=${totals.kills} acks checked=${totals.acksChecked} transactions replayed=${totals.txsReplayed} losses=${totals.losses}`,
  );
});

describe('kill -9 torture', () => {
  describe.each(MODES)('sync %s', (mode) => {
    it.each(IOS)(
      `io %s: every acknowledged commit survives SIGKILL, nothing is duplicated, reordered, altered or invented (${KILLS_PER_COMBO} kills)`,
      async (io) => {
        const root = fs.mkdtempSync(path.join(os.tmpdir(), 'segwal-torture-'));
        const dir = path.join(root, 'log');
        const fenceFile = `${dir}.fence`;
        const seed = testSeed(`torture ${mode}/${io}`, 'SEGWAL_TORTURE_SEED', () => randomInt(2 ** 32));
        const random = mulberry32(seed ^ (mode.length * 7919) ^ (io.length * 104729));
        const attempted = new Map<string, number>(); // "writer:seq" -> n
        const acks = new Map<string, Ack>(); // "writer:seq" -> ack
        let kills = 0;
        let acksChecked = 0;
        let txsReplayed = 0;
        try {
          for (let run = 1; run <= KILLS_PER_COMBO; run++) {
            const fromSpawn = random() < 0.125;
            const delay = 50 + Math.floor(random() * 351);
            const childSeed = Math.floor(random() * 2 ** 31);
            const context = `mode ${mode}, io ${io}, seed ${seed}, run ${run} (child seed ${childSeed}, kill ${delay} ms after ${fromSpawn ? 'spawn' : 'ready'})`;
            const result = await runUntilKilled([CHILD, DIST_ENTRY, dir, mode, io, String(run), String(childSeed)], `${dir}.journal-${run}`, delay, fromSpawn);
            expect(result.killed, `${context}: the child exited by itself (code ${result.code}): ${result.stderr}`).toBe(true);
            kills++;
            for (const line of result.lines) {
              const [tag, writer, seqText, nText, lsnText] = line.split(' ');
              if (tag === 'A') attempted.set(`${writer}:${seqText}`, Number(nText));
              if (tag === 'W' || tag === 'D') {
                acks.set(`${writer}:${seqText}`, {
                  writer: writer!,
                  seq: Number(seqText),
                  n: Number(nText),
                  commitLsn: Number(lsnText),
                  durable: tag === 'D',
                });
              }
            }

            // Reopen exactly as an application would after the crash.
            const fence = fs.existsSync(fenceFile) ? Number(fs.readFileSync(fenceFile, 'utf8')) : 0;
            const replayed: Array<{ events: Buffer[]; commitLsn: number }> = [];
            const { wal } = await Wal.open({
              dir,
              io,
              sync: mode,
              segmentBytes: 4096,
              checkpointLsn: fence,
              onReplay: (events, tx) => void replayed.push({ events: events.map((e) => Buffer.from(e)), commitLsn: tx.commitLsn }),
            }).catch((error: unknown) => {
              throw new Error(`${context}: open failed after the kill: ${String(error)}`, { cause: error });
            });
            await wal.close();

            const seen = new Set<string>();
            const lastSeqOf = new Map<string, number>();
            let lastCommit = fence;
            for (const tx of replayed) {
              expect(tx.commitLsn, `${context}: commit LSNs in replay order`).toBeGreaterThan(lastCommit);
              lastCommit = tx.commitLsn;
              const match = /^(\d+\.\d+):(\d+):/.exec(tx.events[0]!.toString('latin1'));
              expect(match, `${context}: a replayed event that no writer produced: ${tx.events[0]!.toString('latin1')}`).not.toBeNull();
              const writer = match![1]!;
              const seq = Number(match![2]);
              const key = `${writer}:${seq}`;
              expect(attempted.get(key), `${context}: transaction ${key} (${tx.events.length} events) was never attempted`).toBe(
                tx.events.length,
              );
              tx.events.forEach((event, i) => {
                expect(event.equals(payloadOf(writer, seq + i)), `${context}: event ${writer}:${seq + i} altered`).toBe(true);
              });
              expect(seen.has(key), `${context}: transaction ${key} replayed twice`).toBe(false);
              seen.add(key);
              expect(seq, `${context}: writer ${writer} reordered`).toBeGreaterThan(lastSeqOf.get(writer) ?? 0);
              lastSeqOf.set(writer, seq + tx.events.length - 1);
              const ack = acks.get(key);
              if (ack !== undefined) expect(tx.commitLsn, `${context}: ${key} replayed at another LSN than acknowledged`).toBe(ack.commitLsn);
            }
            let checked = 0;
            for (const [key, ack] of acks) {
              if (ack.commitLsn <= fence) {
                expect(seen.has(key), `${context}: ${key} is covered by the snapshot at fence ${fence} yet replayed`).toBe(false);
                continue;
              }
              checked++;
              if (!seen.has(key)) totals.losses++;
              expect(seen.has(key), `${context}: acknowledged (${ack.durable ? 'durable' : 'written'}) ${key} at LSN ${ack.commitLsn} lost`).toBe(true);
            }
            totals.acksChecked += checked;
            totals.txsReplayed += replayed.length;
            acksChecked += checked;
            txsReplayed += replayed.length;
          }
        } finally {
          totals.kills += kills;
          fs.rmSync(root, { recursive: true, force: true });
        }
        console.log(`torture ${mode}/${io}: kills=${kills} acknowledged transactions=${acks.size} seed=${seed}`);
        expect(kills).toBe(KILLS_PER_COMBO);
        expect(acks.size).toBeGreaterThan(0);
        // The checks sit in loops over what each reopen replayed and what was acknowledged: they ran.
        expect(acksChecked, 'acknowledgements checked after a kill').toBeGreaterThan(0);
        expect(txsReplayed, 'transactions replayed and checked').toBeGreaterThan(0);
      },
      TIMEOUT,
    );
  });
});
