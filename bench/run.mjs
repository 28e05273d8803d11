// npm run bench [-- --quick] [--only W1,W3] [--dir <scratch dir on the disk to test>]
// Runs every workload × driver in its own process, prints the table and the
// goals, and writes bench/results/latest.json. A full run also writes
// docs/bench.svg and the results section of docs/BENCHMARKS.md.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { evaluateGoals } from './goals.mjs';
import { goalLines, goalsSvg, markdownTable, textTable, withRatios } from './report.mjs';
import { ROUNDS, WORKLOADS } from './workloads.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    dir: { type: 'string', default: os.tmpdir() },
    out: { type: 'string', default: path.join(here, 'results/latest.json') },
  },
});
const mode = values.quick ? 'quick' : 'full';
const only = values.only?.split(',');
const workloads = WORKLOADS.filter((workload) => only === undefined || only.includes(workload.id));
const root = fs.mkdtempSync(path.join(values.dir, 'segwal-bench-'));

const results = [];
try {
  for (const workload of workloads) {
    const rounds = workload.run === undefined && workload.rounds !== true ? 1 : ROUNDS[mode];
    const measured = new Map(workload.drivers.map((driver) => [driver, []]));
    for (let round = 0; round < rounds; round++) {
      for (const driver of workload.drivers) measured.get(driver).push(await measure(workload, driver));
    }
    for (const [driver, runs] of measured) {
      const result = { ...medianRound(runs), roundsOpsPerSec: runs.map((run) => run.opsPerSec) };
      results.push(result);
      process.stderr.write(`${workload.id} ${driver}: ${Math.round(result.opsPerSec)} ops/s\n`);
    }
  }
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}

/** One measurement in its own process, started on a quiet disk (no writeback of the previous driver's bytes under it). */
async function measure(workload, driver) {
  await promisify(execFile)('sync');
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(here, 'child.mjs'), workload.id, driver, mode, root], {
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1));
}

/** The round with the median throughput (all its figures, so latency and loop delay come from the same round). */
function medianRound(runs) {
  const sorted = [...runs].sort((a, b) => a.opsPerSec - b.opsPerSec);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

const rows = withRatios(workloads, results);
const goals = evaluateGoals(results).filter((goal) => workloads.some((workload) => workload.id === goal.workload));
const machine = {
  cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}`,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  kernel: `${os.type()} ${os.release()}`,
  node: process.version,
};
console.log(textTable(workloads, rows));
console.log(`\nGoals (${mode} run):\n${goalLines(goals).join('\n')}`);

fs.mkdirSync(path.dirname(values.out), { recursive: true });
fs.writeFileSync(values.out, `${JSON.stringify({ mode, date: new Date().toISOString(), machine, results: rows, goals }, null, 2)}\n`);

if (mode === 'full' && only === undefined) {
  const docs = path.join(here, '../docs');
  fs.writeFileSync(path.join(docs, 'bench.svg'), goalsSvg(goals, `segwal goals, ${new Date().toISOString().slice(0, 10)}, ${machine.cpus}`));
  const page = path.join(docs, 'BENCHMARKS.md');
  const generated = [
    '<!-- results:start (written by `npm run bench`) -->',
    `Run of ${new Date().toISOString()} on ${machine.cpus}, ${machine.memoryGiB} GiB, ${machine.kernel}, Node ${machine.node}.`,
    '',
    '```',
    ...goalLines(goals),
    '```',
    markdownTable(workloads, rows),
    '<!-- results:end -->',
  ].join('\n');
  const current = fs.existsSync(page) ? fs.readFileSync(page, 'utf8') : '';
  const marked = /<!-- results:start[\s\S]*<!-- results:end -->/;
  fs.writeFileSync(page, marked.test(current) ? current.replace(marked, generated) : `${current}\n${generated}\n`);
}
