import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/*
 * CPU time and scheduling of other processes (the three nats-servers, a
 * `segwal ship` process), for the shipping workloads: on 2 cores, what the
 * servers spend per transaction is what the writer and the shipper lack.
 * Linux only, from /proc: a process's stat counts every thread of it, ended
 * ones included, in clock ticks (10 ms here).
 */

let ticksPerSecond = null;
/** SCHED_IDLE, as field 41 of proc(5)'s stat gives the policy. */
const SCHED_IDLE = 5;

/** The fields of a /proc stat file after the command name, so that field N of proc(5) is at index N - 3. */
function statFields(file) {
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
  const stat = fs.readFileSync(file, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime of process `pid`, in µs. */
function processCpuUs(pid) {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
  const fields = statFields(`/proc/${pid}/stat`);
  return ((Number(fields[14 - 3]) + Number(fields[15 - 3])) * 1e6) / ticksPerSecond;
}

/** Whether every thread of every process in `pids` runs in the idle scheduling class (SCHED_IDLE). */
export function allThreadsIdle(pids) {
  return pids.every((pid) =>
    fs.readdirSync(`/proc/${pid}/task`).every((tid) => Number(statFields(`/proc/${pid}/task/${tid}/stat`)[41 - 3]) === SCHED_IDLE),
  );
}

/** Starts counting the CPU time `pids` spend from now; `stop()` returns it in µs, all of them together. */
export function startCpuMeter(pids) {
  const total = () => pids.reduce((sum, pid) => sum + processCpuUs(pid), 0);
  const before = total();
  return { stop: () => total() - before };
}
