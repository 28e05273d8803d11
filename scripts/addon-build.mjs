// What the install script and `npm run build:prebuilt` share: where the package keeps its prebuilt
// addon, and how to run node-gyp. src/io/addon.ts searches the same place at run time.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The prebuilt binary for this platform, relative to the package root. Only linux-x64 (glibc) ships one. */
export const PREBUILT_FILE = path.join('prebuilds', `${process.platform}-${process.arch}`, 'segwal_native.node');

const require = createRequire(import.meta.url);

/** Why the addon at `file` does not load here, or null when it does. */
export function loadProblem(file) {
  try {
    require(file);
    return null;
  } catch (error) {
    return error.code === 'MODULE_NOT_FOUND' ? 'not found' : String(error.message).split('\n')[0];
  }
}

/**
 * The node-gyp to run, as [command, ...args]: the one installed beside segwal (this repository's
 * devDependency), else the package manager's own (npm and pnpm set npm_config_node_gyp), else one
 * on PATH. segwal does not depend on node-gyp: only a build from source needs it.
 */
function nodeGyp() {
  try {
    return [process.execPath, require.resolve('node-gyp/bin/node-gyp.js', { paths: [PACKAGE_ROOT] })];
  } catch {
    const fromPackageManager = process.env.npm_config_node_gyp;
    return fromPackageManager ? [process.execPath, fromPackageManager] : ['node-gyp'];
  }
}

/**
 * `node-gyp rebuild` in `directory`, with the headers of the running Node (`--nodedir`), so nothing
 * is downloaded. Returns null on success, or why it failed.
 */
export function rebuild(directory) {
  const [command, ...args] = nodeGyp();
  const nodedir = path.resolve(process.execPath, '../..');
  const result = spawnSync(command, [...args, 'rebuild', `--directory=${directory}`, `--nodedir=${nodedir}`], {
    stdio: 'inherit',
  });
  if (result.error !== undefined) return `could not run node-gyp: ${result.error.message}`;
  return result.status === 0 ? null : `node-gyp rebuild failed (exit ${result.status ?? result.signal})`;
}
