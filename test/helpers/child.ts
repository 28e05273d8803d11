import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The compiled package entry (built by the global setup), importable from a child process. */
export const DIST_ENTRY = pathToFileURL(path.join(ROOT, 'dist/index.js')).href;

export interface ChildResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs an ES module body in a fresh node process; `segwal` is in scope as the dist entry's namespace. */
export function runModule(body: string, args: string[] = []): Promise<ChildResult> {
  const source = `import * as segwal from ${JSON.stringify(DIST_ENTRY)};\n${body}`;
  return runNode(['--input-type=module', '-e', source, '--', ...args]);
}

/** Runs node with `args` in a fresh process (in `cwd`, default this one's) and collects what it printed. */
export function runNode(args: string[], cwd?: string): Promise<ChildResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}
