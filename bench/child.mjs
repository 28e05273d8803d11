// One measurement in a fresh process (so RSS, GC and open handles of one
// driver never leak into another's figures): prints one JSON line.
import { DRIVERS } from './drivers/index.mjs';
import { WORKLOADS, runOne } from './workloads.mjs';

const [workloadId, driverId, mode, root] = process.argv.slice(2);
const workload = WORKLOADS.find((candidate) => candidate.id === workloadId);
// A scenario workload names its own variants; the others run a driver of bench/drivers.
const driver = workload?.scenario !== undefined ? { id: driverId } : DRIVERS.get(driverId);
if (workload === undefined || driver === undefined) {
  console.error(`unknown workload ${workloadId} or driver ${driverId}`);
  process.exit(2);
}
const result = await runOne(workload, driver, { quick: mode === 'quick', root });
console.log(JSON.stringify({ workload: workloadId, driver: driverId, ...result }));
