// A/B of two builds of segwal in one process (docs/BENCHMARKS.md, "Warm-up and
// cheaper addon arguments"): both trees' dist/ and addons are loaded side by
// side, and blocks of calls alternate between them, so both builds see the same
// moments of the machine. Four measures, per call: the addon's blocking
// appendFrames of one 161-byte frame, its crc32 of 16 bytes (the cost of a call
// itself), and a blocking commit of one 128-byte event in sync none (W4's
// shape), with and without metrics (their difference is what metrics cost a
// write in that build). Cross-process rounds (bench/ab.mjs) could not resolve a change of
// this size: the control driver moved by 30 % between trees.
//   node bench/same-process-ab.mjs <tree A> <tree B>
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { median } from './measure.mjs';

const BLOCKS = 40;
const WARM_BLOCKS = 6;
const CALLS_PER_BLOCK = 20_000;
const FILE_BYTES = 64 << 20;
const trees = process.argv.slice(2, 4).map((tree) => path.resolve(tree));
if (trees.length !== 2) {
  console.error('usage: node bench/same-process-ab.mjs <tree A> <tree B>');
  process.exit(2);
}
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'segwal-same-process-ab-'));
const frame = Buffer.alloc(161, 7);
const small = Buffer.alloc(16, 7);
const event = Buffer.alloc(128, 0x5a);

/** ns per call of `body`, run CALLS_PER_BLOCK times. */
function timeBlock(body) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < CALLS_PER_BLOCK; i++) body(i);
  return Number(process.hrtime.bigint() - started) / CALLS_PER_BLOCK;
}

try {
  const builds = [];
  for (const [index, tree] of trees.entries()) {
    const segwal = await import(pathToFileURL(path.join(tree, 'dist', 'index.js')).href);
    const io = segwal.createNativeIo();
    const fd = io.sync.openSegment(path.join(root, `calls-${index}.wal`), true);
    io.sync.allocate(fd, FILE_BYTES, true);
    const { wal } = await segwal.Wal.open({ dir: path.join(root, `log-${index}`), sync: 'none' });
    const bare = (await segwal.Wal.open({ dir: path.join(root, `log-${index}-no-metrics`), sync: 'none', metrics: false })).wal;
    const slots = FILE_BYTES / frame.length - 1;
    builds.push({
      wals: [wal, bare],
      measures: {
        appendFrames: () => timeBlock((i) => io.sync.appendFrames(fd, frame, (i % slots) * frame.length, false)),
        crc32: () => timeBlock(() => io.crc32(small)),
        commitSync: () => timeBlock(() => wal.commitSync([event])),
        commitSyncNoMetrics: () => timeBlock(() => bare.commitSync([event])),
      },
      ns: { appendFrames: [], crc32: [], commitSync: [], commitSyncNoMetrics: [] },
    });
  }
  for (let block = 0; block < BLOCKS; block++) {
    for (const build of block % 2 === 0 ? builds : [...builds].reverse()) {
      for (const [name, measure] of Object.entries(build.measures)) build.ns[name].push(measure());
    }
  }
  for (const name of Object.keys(builds[0].ns)) {
    const [a, b] = builds.map((build) => build.ns[name].slice(WARM_BLOCKS));
    const ratio = median(a.map((value, i) => value / b[i]));
    console.log(`${name}: A ${median(a).toFixed(0)} ns, B ${median(b).toFixed(0)} ns per call; median per-block A/B ${ratio.toFixed(3)}`);
  }
  for (const build of builds) for (const wal of build.wals) await wal.close();
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
