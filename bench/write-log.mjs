// Writes `count` one-event transactions of `eventBytes` bytes into a new log
// at `dir` and prints the last commit LSN: S1's log, written by a process of
// its own, as a restarted service or `segwal ship <dir>` finds it (the
// shipping process then starts with none of the writer's garbage; see
// docs/BENCHMARKS.md, "S1's log written by another process").
import { Wal } from 'segwal';

const [dir, count, eventBytes] = process.argv.slice(2);
const { wal } = await Wal.open({ dir, sync: 'none' });
const event = Buffer.alloc(Number(eventBytes), 0x5a);
let last = null;
for (let i = 0; i < Number(count); i++) last = wal.commitSync([event]);
await wal.close();
console.log(last.commitLsn);
