// A/B of two builds of segwal in one run: the same workload × driver from two
// trees (each with its own dist/ and addon built), interleaved A B B A A B …,
// `sync` before each run, medians per tree and the median of the per-round
// ratios (a ratio taken within seconds says more than medians on a noisy
// machine). How docs/BENCHMARKS.md's before/after figures are taken:
//   git worktree add /tmp/before <commit> && (cd /tmp/before && npm ci && npm run build)
//   node bench/ab.mjs 5 /tmp/before . "W1 segwal-native-per-commit" "W3 segwal-native-group"
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { median } from './measure.mjs';

const [rounds, treeA, treeB, ...cases] = process.argv.slice(2);
if (cases.length === 0) {
  console.error('usage: node bench/ab.mjs <rounds> <tree A> <tree B> "<workload> <driver>" ...');
  process.exit(2);
}
const trees = { A: path.resolve(treeA), B: path.resolve(treeB) };
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'segwal-ab-'));

const results = new Map(cases.map((c) => [c, { A: [], B: [] }]));
try {
  for (let round = 0; round < Number(rounds); round++) {
    for (const c of cases) {
      const [workload, driver] = c.split(' ');
      for (const tree of round % 2 === 0 ? ['A', 'B'] : ['B', 'A']) {
        execFileSync('sync');
        const output = execFileSync(process.execPath, [path.join(trees[tree], 'bench/child.mjs'), workload, driver, 'full', scratch], { maxBuffer: 1 << 20 });
        results.get(c)[tree].push(JSON.parse(output.toString().trim().split('\n').at(-1)));
      }
    }
  }
} finally {
  fs.rmSync(scratch, { recursive: true, force: true });
}

const fixed = (value, digits = 0) => (value === null || value === undefined ? '-' : value.toFixed(digits));
for (const [c, { A, B }] of results) {
  const metric = c.startsWith('W5') ? 'mbPerSec' : 'opsPerSec';
  const row = (name, runs) => {
    const pick = (key) => median(runs.map((run) => run[key]));
    let line = `${name} ${metric} median ${fixed(pick(metric))} [${runs.map((run) => fixed(run[metric])).join(' / ')}]`;
    if (runs[0].p50Us != null) line += ` p50 ${fixed(pick('p50Us'))} p99 ${fixed(pick('p99Us'))} loopP99 ${fixed(pick('loopDelayP99Ms'), 2)}`;
    if (runs[0].rssGrowthMb != null) line += ` rss ${fixed(pick('rssGrowthMb'), 1)}`;
    if (runs[0].peakRssMb != null) line += ` peakRss ${fixed(pick('peakRssMb'), 1)}`;
    if (runs[0].cpuUsPerOp != null) line += ` cpu ${fixed(pick('cpuUsPerOp'), 2)} µs/op`;
    return line;
  };
  const ratios = A.map((a, i) => B[i][metric] / a[metric]);
  console.log(`${c}\n  ${row('A', A)}\n  ${row('B', B)}\n  median per-round B/A ${median(ratios).toFixed(3)} [${ratios.map((r) => r.toFixed(2)).join(' ')}]`);
}
