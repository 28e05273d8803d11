// The kill -9 torture child (test/reliability/torture.test.ts spawns and SIGKILLs it).
//
//   node torture-child.mjs <dist-entry-url> <dir> <sync-mode> <io> <run> <seed>
//
// Opens a Wal on <dir> (checkpointLsn from <dir>.fence if it exists), then
// runs several concurrent writers until it is killed. Every line goes to the
// journal <dir>.journal-<run> with fs.writeSync: one write(2) to a regular
// file, in the page cache before the child moves on, so SIGKILL cannot take
// it. (process.stdout.write is not enough: when the pipe is full, which happens
// on a loaded machine, Node queues the line and a kill loses it.) Only the
// ready line also goes to stdout, so the parent knows when to arm the kill.
//
//   R <nextLsn>                          open succeeded, writers start
//   A <writer> <seq> <n>                 about to commit events seq..seq+n-1 of <writer>
//   W <writer> <seq> <n> <commitLsn>     that transaction was acknowledged as written
//   D <writer> <seq> <n> <commitLsn>     ... acknowledged as durable (fsync'd)
//   F <fence>                            a checkpoint fence was written to the fence file
//
// <writer> is "<run>.<w>", unique across the runs of one directory.
// An event's payload is `${writer}:${seq}:` followed by filler derived from
// both (see payloadOf in torture.test.ts): the parent can rebuild every byte.
import fs from 'node:fs';
import path from 'node:path';

const [distEntry, dir, mode, io, runArg, seedArg] = process.argv.slice(2);
const { Wal } = await import(distEntry);
const run = Number(runArg);
let seed = Number(seedArg) >>> 0 || 1;
const random = () => {
  // mulberry32, as test/helpers/random.ts
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = (n) => Math.floor(random() * n);
const journal = fs.openSync(`${dir}.journal-${run}`, 'a');
const say = (line) => fs.writeSync(journal, line + '\n');

function payloadOf(writer, seq) {
  const head = `${writer}:${seq}:`;
  const fill = (seq * 7 + writer.length * 13) % 90;
  let body = '';
  for (let i = 0; i < fill; i++) body += String.fromCharCode(97 + ((seq + i) % 26));
  return Buffer.from(head + body);
}

const fenceFile = path.join(path.dirname(dir), `${path.basename(dir)}.fence`);
const checkpointLsn = fs.existsSync(fenceFile) ? Number(fs.readFileSync(fenceFile, 'utf8')) : 0;
const { wal } = await Wal.open({ dir, sync: mode, io, segmentBytes: 4096, checkpointLsn });
say(`R ${wal.nextLsn}`);
process.stdout.write(`R ${wal.nextLsn}\n`);

let fence = checkpointLsn;

async function writer(w) {
  const id = `${run}.${w}`;
  let seq = 1;
  for (;;) {
    const n = 1 + pick(5);
    const events = Array.from({ length: n }, (_, i) => payloadOf(id, seq + i));
    say(`A ${id} ${seq} ${n}`);
    const choice = random();
    let commitLsn;
    let durable = mode === 'per-commit';
    if (choice < 0.25) {
      // The low-level API: begin, append / appendBatch, commit, then flush.
      const tx = wal.begin();
      if (n > 1 && random() < 0.5) {
        tx.append(events[0]);
        tx.appendBatch(events.slice(1));
      } else {
        for (const event of events) tx.append(event);
      }
      commitLsn = (await tx.commit()).commitLsn;
      if (mode === 'group' && random() < 0.3) {
        await wal.sync();
        durable = true;
      } else {
        await wal.flush();
      }
    } else {
      const wantDurable = mode !== 'per-commit' && random() < 0.3;
      const lsns = await wal.commit(events, wantDurable ? { durable: true } : {});
      commitLsn = lsns.commitLsn;
      durable ||= wantDurable;
    }
    say(`${durable ? 'D' : 'W'} ${id} ${seq} ${n} ${commitLsn}`);
    seq += n;
    const extra = random();
    if (extra < 0.008) {
      // A checkpoint whose "snapshot" is the fence itself, written atomically
      // (tmp + rename) before the Wal may truncate anything at or below it.
      await wal.checkpoint((f) => {
        fs.writeFileSync(`${fenceFile}.tmp`, String(f));
        fs.renameSync(`${fenceFile}.tmp`, fenceFile);
        say(`F ${f}`);
        fence = f;
      });
    } else if (extra < 0.02 && fence > 0) {
      await wal.truncateUpTo(fence);
    } else if (extra < 0.15) {
      // Think time between transactions: varies how writers interleave (the kill itself comes at a random time).
      await new Promise((resolve) => setTimeout(resolve, pick(3)));
    }
  }
}

const writers = 2 + pick(3);
await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
