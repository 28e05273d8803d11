// Where a durable commit's time goes (docs/BENCHMARKS.md, "goals we did not reach"):
// the same append done on the event loop, through libuv's thread pool, through
// the addon's writer thread (the async appendFrames), and through Wal.commit,
// one awaited at a time. `node bench/round-trip.mjs [count] [dir]`
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Wal, createNativeIo } from 'segwal';

const count = Number(process.argv[2] ?? 3000);
const root = fs.mkdtempSync(path.join(process.argv[3] ?? os.tmpdir(), 'segwal-round-trip-'));
const io = createNativeIo();
// The bytes of one 128-byte-event commit (one Commit record); their content does not matter here.
const commitBytes = Buffer.alloc(161, 7);

async function microsPerCall(step) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await step(i);
  return Number(process.hrtime.bigint() - started) / 1000 / count;
}

function preparedFile(name) {
  const fd = io.sync.openSegment(path.join(root, name), true);
  io.sync.allocate(fd, 64 << 20, true);
  io.sync.datasync(fd);
  return fd;
}

const fd = preparedFile('probe.bin');
const at = (i) => (i % 100_000) * commitBytes.length;
const jsFd = fs.openSync(path.join(root, 'node-fs.bin'), 'w');
const figures = {
  'write, on the loop': await microsPerCall((i) => io.sync.appendFrames(fd, commitBytes, at(i), false)),
  'write, thread pool (addon)': await microsPerCall((i) => io.async.write(fd, commitBytes, at(i))),
  'write, addon writer thread': await microsPerCall((i) => io.async.appendFrames(fd, commitBytes, at(i), false)),
  'write, thread pool (node:fs)': await microsPerCall(
    (i) => new Promise((resolve, reject) => fs.write(jsFd, commitBytes, 0, commitBytes.length, at(i), (e) => (e ? reject(e) : resolve()))),
  ),
  'write+fdatasync, on the loop': await microsPerCall((i) => io.sync.appendFrames(fd, commitBytes, at(i), true)),
  'write+fdatasync, addon writer thread': await microsPerCall((i) => io.async.appendFrames(fd, commitBytes, at(i), true)),
};
const { wal } = await Wal.open({ dir: path.join(root, 'wal'), io: 'native', sync: 'per-commit' });
const event = Buffer.alloc(128, 7);
figures['Wal.commit, per-commit'] = await microsPerCall(() => wal.commit([event]));
await wal.close();
fs.closeSync(jsFd);
io.sync.close(fd);
fs.rmSync(root, { recursive: true, force: true });

console.log(`µs per call, ${count} calls each, one awaited at a time:`);
for (const [name, micros] of Object.entries(figures)) console.log(`  ${name.padEnd(38)} ${micros.toFixed(1)}`);
