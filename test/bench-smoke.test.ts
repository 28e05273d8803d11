import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/child.js';
import { tempDir } from './helpers/temp-dir.js';

// A smoke test of `npm run bench -- --quick`: every workload completes with every
// driver and the report is well-formed. No timing is asserted: the machines are noisy.
describe('npm run bench -- --quick', () => {
  it('runs every workload with every driver and writes a well-formed report', async () => {
    const out = path.join(tempDir(), 'latest.json');
    const { stdout } = await promisify(execFile)(process.execPath, [path.join(ROOT, 'bench/run.mjs'), '--quick', '--out', out], {
      cwd: ROOT,
      maxBuffer: 16 << 20,
    });
    const { WORKLOADS } = (await import(path.join(ROOT, 'bench/workloads.mjs'))) as {
      WORKLOADS: Array<{ id: string; drivers: string[] }>;
    };
    const report = JSON.parse(fs.readFileSync(out, 'utf8')) as {
      mode: string;
      machine: Record<string, unknown>;
      results: Array<{
        workload: string;
        driver: string;
        ops: number;
        opsPerSec: number;
        roundsOpsPerSec: number[];
        cpuUsPerOp?: number;
        serversCpuUsPerOp?: number;
        shipProcessCpuUsPerOp?: number | null;
        coresBusy?: number;
        acknowledgedShare?: number | null;
        shippingAtIdlePriority?: boolean;
      }>;
      goals: Array<{ label: string; value: number; met: boolean }>;
    };
    expect(report.mode).toBe('quick');
    expect(report.machine).toMatchObject({ node: process.version });
    for (const workload of WORKLOADS) {
      for (const driver of workload.drivers) {
        const result = report.results.find((row) => row.workload === workload.id && row.driver === driver);
        expect(result, `${workload.id} ${driver}`).toBeDefined();
        expect(result!.ops, `${workload.id} ${driver}`).toBeGreaterThan(0);
        expect(Number.isFinite(result!.opsPerSec), `${workload.id} ${driver}`).toBe(true);
        // A quick run measures one round; the reported figures are that round's.
        expect(result!.roundsOpsPerSec, `${workload.id} ${driver}`).toEqual([result!.opsPerSec]);
        // S1 also says what each sender spent in CPU per transaction, the servers beside it lacking it, and what the servers spent.
        if (workload.id.startsWith('S1')) {
          expect(result!.cpuUsPerOp, `${workload.id} ${driver}`).toBeGreaterThan(0);
          expect(result!.serversCpuUsPerOp, `${workload.id} ${driver}`).toBeGreaterThan(0);
        }
        // S2 says where the cores went (in ticks of 10 ms: servers idle without a shipper can count 0) and how much the stream had acknowledged.
        if (workload.id === 'S2') {
          const shipping = driver !== 'segwal-group';
          expect(result!.cpuUsPerOp, driver).toBeGreaterThan(0);
          expect(result!.serversCpuUsPerOp, driver).toBeGreaterThanOrEqual(0);
          expect(result!.coresBusy, driver).toBeGreaterThan(0);
          const shipProcess = driver.startsWith('segwal-group-ship-process');
          expect(result!.shipProcessCpuUsPerOp === null, driver).toBe(!shipProcess);
          // In ticks of 10 ms: a quick round's ship process can count 0.
          if (shipProcess) expect(result!.shipProcessCpuUsPerOp, driver).toBeGreaterThanOrEqual(0);
          // Only the idle driver's servers and ship process run in SCHED_IDLE, every thread of them.
          expect(result!.shippingAtIdlePriority, driver).toBe(driver === 'segwal-group-ship-process-idle');
          if (shipping) {
            expect(result!.acknowledgedShare, driver).toBeGreaterThanOrEqual(0);
            expect(result!.acknowledgedShare, driver).toBeLessThanOrEqual(1);
          } else expect(result!.acknowledgedShare, driver).toBeNull();
        }
      }
      expect(stdout).toContain(`${workload.id} — `);
    }
    const { GOALS } = (await import(path.join(ROOT, 'bench/goals.mjs'))) as { GOALS: unknown[] };
    expect(report.goals.length).toBe(GOALS.length);
    for (const goal of report.goals) expect(typeof goal.met, goal.label).toBe('boolean');
    expect(stdout).toMatch(/Goals \(quick run\):/);
  }, 300_000);

  it('bench/round-trip.mjs times each way of appending and prints one figure per way', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [path.join(ROOT, 'bench/round-trip.mjs'), '50', tempDir()], {
      cwd: ROOT,
    });
    const figures = stdout.split('\n').filter((line) => /^ {2}\S/.test(line));
    expect(figures.map((line) => line.replace(/\s+[\d.]+$/, '').trim())).toEqual([
      'write, on the loop',
      'write, thread pool (addon)',
      'write, addon writer thread',
      'write, thread pool (node:fs)',
      'write+fdatasync, on the loop',
      'write+fdatasync, addon writer thread',
      'Wal.commit, per-commit',
    ]);
    for (const line of figures) expect(Number(line.trim().split(/\s+/).at(-1))).toBeGreaterThan(0);
  }, 60_000);
});
