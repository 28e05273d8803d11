// `npm run build:prebuilt` (and `npm pack`, through prepack): builds the addon from a clean copy of
// binding.gyp and native/ in .prebuild/, and puts it where the package ships it (PREBUILT_FILE).
// A directory of its own, so packing never deletes build/, which this checkout's tests load.
// Node-API is ABI-stable, so this one binary serves every Node version the package supports.
import fs from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT, PREBUILT_FILE, loadProblem, rebuild } from './addon-build.mjs';

const glibc = process.report.getReport().header.glibcVersionRuntime;
if (process.platform !== 'linux' || process.arch !== 'x64' || glibc === undefined) {
  fail(`the package ships a prebuilt addon for linux-x64 with glibc only; this is ${process.platform}-${process.arch}${glibc === undefined ? '' : ` glibc ${glibc}`}`);
}

const staging = path.join(PACKAGE_ROOT, '.prebuild');
fs.rmSync(staging, { recursive: true, force: true });
fs.mkdirSync(staging);
fs.copyFileSync(path.join(PACKAGE_ROOT, 'binding.gyp'), path.join(staging, 'binding.gyp'));
fs.cpSync(path.join(PACKAGE_ROOT, 'native'), path.join(staging, 'native'), { recursive: true });
const failure = rebuild(staging);
if (failure !== null) fail(failure);

const target = path.join(PACKAGE_ROOT, PREBUILT_FILE);
fs.mkdirSync(path.dirname(target), { recursive: true });
fs.copyFileSync(path.join(staging, 'build', 'Release', 'segwal_native.node'), target);
fs.rmSync(staging, { recursive: true, force: true });
const problem = loadProblem(target);
if (problem !== null) fail(`the prebuilt addon does not load: ${problem}`);
console.log(`prebuilt addon: ${PREBUILT_FILE}`);

function fail(message) {
  console.error(`build:prebuilt: ${message}`);
  process.exit(1);
}
