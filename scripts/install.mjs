// The package's install script. It succeeds (exit 0) whether or not the addon can be had, because
// segwal works without it (`io: 'js'`); README, "Install", has the matrix.
//   1. The prebuilt binary loads: done, nothing is compiled.
//   2. Otherwise build from source with node-gyp (Linux only: the addon uses flock, fdatasync and
//      fallocate).
//   3. That fails too: say so, and how to run without the addon or get it later.
import path from 'node:path';
import { PACKAGE_ROOT, PREBUILT_FILE, loadProblem, rebuild } from './addon-build.mjs';

const prebuilt = loadProblem(path.join(PACKAGE_ROOT, PREBUILT_FILE));
if (prebuilt !== null) {
  const build = buildFromSource();
  if (build !== null) {
    const problem =
      prebuilt === 'not found'
        ? `none for ${process.platform}-${process.arch} (one ships for linux-x64 with glibc)`
        : `does not load here: ${prebuilt}`;
    console.error(
      [
        '',
        "segwal: installed without its native addon; `io: 'js'` works.",
        `  prebuilt binary: ${problem}`,
        `  build from source: ${build}`,
        "Wal.open's default `io: 'native'` fails with WAL_IO until the addon is there. Open the log with",
        "`io: 'js'` (node:fs only, the same files), or install python3, make and a C++17 compiler",
        '(Debian/Ubuntu: apt-get install python3 make g++) and run `npm rebuild segwal`.',
        '',
      ].join('\n'),
    );
  }
}

/** Null when the addon was built and loads, or why not. */
function buildFromSource() {
  if (process.platform !== 'linux') return 'skipped, the addon builds only on Linux';
  const failure = rebuild(PACKAGE_ROOT);
  if (failure !== null) return failure;
  const built = loadProblem(path.join(PACKAGE_ROOT, 'build', 'Release', 'segwal_native.node'));
  return built === null ? null : `built, but does not load: ${built}`;
}
