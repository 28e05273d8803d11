import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/*
 * CPU time of other processes (the three nats-servers, a `segwal ship`
 * process), for the shipping workloads: on 2 cores, what the servers spend
 * per transaction is what the writer and the shipper lack. Linux only, from
 * /proc/<pid>/stat, which counts every thread of the process, ended ones
 * included, in clock ticks (10 ms here).
 */

let ticksPerSecond = null;

/** utime + stime of process `pid`, in µs. */
function processCpuUs(pid) {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of proc(5), utime and stime, are the 12th and 13th after the name.
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / ticksPerSecond;
}

/** Starts counting the CPU time `pids` spend from now; `stop()` returns it in µs, all of them together. */
export function startCpuMeter(pids) {
  const total = () => pids.reduce((sum, pid) => sum + processCpuUs(pid), 0);
  const before = total();
  return { stop: () => total() - before };
}
