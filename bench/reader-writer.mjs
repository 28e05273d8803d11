// The writer of bench workload R2 (bench/readers.mjs): commits per-commit,
// one about every 2 ms, and prints "<commitLsn> <wall ms>" as each is
// acknowledged. Lines are collected and printed at the end, so the pipe
// never slows the writer.
//
//   node reader-writer.mjs <dir> <commits>
import { Wal } from 'segwal';
import { wallMs } from './readers.mjs';

const [dir, count] = process.argv.slice(2);
const commits = Number(count);
const event = Buffer.alloc(128, 0x5a);
const { wal } = await Wal.open({ dir, sync: 'per-commit' });
const lines = [];
for (let i = 0; i < commits; i++) {
  const { commitLsn } = await wal.commit([event]);
  lines.push(`${commitLsn} ${wallMs()}`);
  await new Promise((resolve) => setTimeout(resolve, 2));
}
await wal.close();
process.stdout.write(`${lines.join('\n')}\n`);
