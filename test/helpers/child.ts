import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The compiled package entry (built by the global setup), importable from a child process. */
export const DIST_ENTRY = pathToFileURL(path.join(ROOT, 'dist/index.js')).href;

/** Runs an ES module body in a fresh node process; `segwal` is in scope as the dist entry's namespace. */
export function runModule(body: string, args: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const source = `import * as segwal from ${JSON.stringify(DIST_ENTRY)};\n${body}`;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', source, '--', ...args], (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}
