import { execFile } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './child.js';

export const CLI_BIN = path.join(ROOT, 'dist/cli/main.js');

/** Runs the real `segwal` bin (compiled by the global setup) as a subprocess. */
export function runCli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI_BIN, ...args], (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}
