import { spawn } from 'node:child_process';
import fs from 'node:fs';

/*
 * Node children for the kill -9 tests. A child writes its journal to a file,
 * one fs.writeSync (one write(2)) per line, so a line it wrote is in the page
 * cache before it goes on and a kill cannot take it (process.stdout.write to a
 * full pipe is asynchronous, and a kill loses the line). It prints one line
 * starting with "R " to stdout once ready.
 */

export interface KilledRun {
  /** The whole lines of the journal. */
  lines: string[];
  /** It died of our SIGKILL, rather than exiting by itself. */
  killed: boolean;
  stderr: string;
  code: number | null;
}

export interface RunningChild {
  /** Resolves when the child printed its ready line (never, if it dies first). */
  readonly ready: Promise<void>;
  /** Resolves when the child is gone, with its journal. */
  readonly ended: Promise<KilledRun>;
  /** SIGKILLs it. */
  kill(): void;
}

/** Spawns `node <args>`; the child journals to `journal`. */
export function startChild(args: string[], journal: string): RunningChild {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let stderr = '';
  let killed = false;
  let onReady = () => {};
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    out += chunk;
    if (out.startsWith('R ')) onReady();
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  const ended = new Promise<KilledRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      // Only whole lines count: the child writes each line in one write(2).
      const lines = fs.existsSync(journal) ? fs.readFileSync(journal, 'utf8').split('\n') : [''];
      lines.pop();
      resolve({ lines, killed: killed && signal === 'SIGKILL', stderr, code });
    });
  });
  return {
    ready,
    ended,
    kill: () => {
      killed = child.kill('SIGKILL') || killed;
    },
  };
}

/** Spawns `node <args>` and SIGKILLs it `delayMs` after it printed its ready line (or after spawn when `fromSpawn`). */
export async function runUntilKilled(args: string[], journal: string, delayMs: number, fromSpawn: boolean): Promise<KilledRun> {
  const child = startChild(args, journal);
  let timer: NodeJS.Timeout | undefined;
  void (fromSpawn ? Promise.resolve() : child.ready).then(() => {
    timer = setTimeout(() => child.kill(), delayMs);
  });
  const run = await child.ended;
  clearTimeout(timer);
  return run;
}
