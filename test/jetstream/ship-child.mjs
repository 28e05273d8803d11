// The shipper kill -9 child (test/jetstream/shipper-kill.test.ts spawns and SIGKILLs it).
//
//   node ship-child.mjs <dist-entry-url> <role> <dir> <journal> <run> <seed> <ship-options-json>
//
// <role>:
//   ship      opens a Wal on <dir>, ships it with ship(wal), and commits until killed
//   ship-dir  ships <dir> with shipDirectory (the writer is another process)
//   write     opens a Wal on <dir> and commits until killed (the writer for ship-dir)
//
// Each line goes to <journal> with fs.writeSync: one write(2) to a regular
// file, in the page cache before the child goes on, so SIGKILL cannot take it
// (process.stdout.write to a full pipe is asynchronous, and a kill loses the
// line). The ready line also goes to stdout, so the parent knows when to arm
// the kill.
//
//   R <nextLsn>                        ready: the Wal is open and shipping (or writing) started
//   S <acknowledgedCommitLsn> <divergences>   the stream acknowledged every commit at or below it
//
// The workload is a function of <seed>, the writer and its counter (no
// random generator): 1-4 events of up to 1 KiB, one transaction in 60 one
// event of 70-130 KiB (two or three chunks at a 64 KiB maxMessageBytes),
// every 5th through begin/append/commit, every 11th of those aborted, a pause
// of up to 3 ms after each. A shipping writer now and then waits for the
// stream to acknowledge its commit (shipper.acknowledged).
import fs from 'node:fs';

const [distEntry, role, dir, journalPath, runArg, seedArg, optionsJson] = process.argv.slice(2);
const { Wal } = await import(distEntry);
const { ship, shipDirectory } = await import(new URL('./jetstream/index.js', distEntry).href);
const run = Number(runArg);
const seed = Number(seedArg);
const shipOptions = JSON.parse(optionsJson);
const journal = fs.openSync(journalPath, 'a');
const say = (line) => fs.writeSync(journal, line + '\n');

const ready = (nextLsn) => {
  say(`R ${nextLsn}`);
  process.stdout.write(`R ${nextLsn}\n`);
};

/** Journals the stream's acknowledgements as they grow. */
function watch(shipper) {
  let last = -1;
  setInterval(() => {
    const { acknowledgedCommitLsn, divergences } = shipper.status();
    if (acknowledgedCommitLsn > last) {
      last = acknowledgedCommitLsn;
      say(`S ${acknowledgedCommitLsn} ${divergences}`);
    }
  }, 5);
}

/** The n-th number of a writer's workload, from the seed (a hash of three integers). */
function draw(writer, n, salt) {
  let h = (seed ^ Math.imul(writer + 1, 0x9e3779b1) ^ Math.imul(n, 0x85ebca77) ^ Math.imul(salt, 0xc2b2ae3d)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

function eventsOf(writer, n) {
  const name = `${run}.${writer}:${n}:`;
  const filler = (length) => name + String.fromCharCode(97 + (n % 26)).repeat(Math.max(0, length - name.length));
  if (draw(writer, n, 1) % 60 === 0) return [Buffer.from(filler(70 * 1024 + (draw(writer, n, 2) % (60 * 1024))))];
  const count = 1 + (draw(writer, n, 3) % 4);
  return Array.from({ length: count }, (_, i) => Buffer.from(filler(draw(writer, n, 10 + i) % 1024)));
}

async function write(wal, writer, shipper) {
  for (let n = 1; ; n++) {
    const events = eventsOf(writer, n);
    let commitLsn;
    if (n % 5 === 0) {
      const tx = wal.begin();
      for (const event of events) tx.append(event);
      if (n % 11 === 0) {
        tx.abort();
        continue;
      }
      commitLsn = (await tx.commit()).commitLsn;
      await wal.flush();
    } else {
      commitLsn = (await wal.commit(events)).commitLsn;
    }
    if (shipper !== null && draw(writer, n, 4) % 10 === 0) await shipper.acknowledged(commitLsn);
    await new Promise((resolve) => setTimeout(resolve, draw(writer, n, 5) % 4));
  }
}

const WAL_OPTIONS = { dir, segmentBytes: 1024 * 1024, sync: seed % 2 === 0 ? 'per-commit' : { mode: 'group', intervalMs: 5 } };

if (role === 'ship-dir') {
  const shipper = await shipDirectory(dir, shipOptions);
  ready(0);
  watch(shipper);
} else {
  const { wal } = await Wal.open(WAL_OPTIONS);
  const shipper = role === 'ship' ? await ship(wal, shipOptions) : null;
  ready(wal.nextLsn);
  if (shipper !== null) watch(shipper);
  await Promise.all([0, 1].map((writer) => write(wal, writer, shipper)));
}
