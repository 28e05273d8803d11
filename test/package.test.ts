import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers/child.js';
import {
  newProject,
  npmInstall,
  packPackage,
  run,
  runOk,
  runScript,
  withUnloadablePrebuilt,
  withoutCompiler,
  type Packed,
} from './helpers/packed.js';

/*
 * The package as npm installs it: packed once, installed into fresh projects
 * in each case of README "Install" (normally, without a compiler, with install
 * scripts disabled, with a prebuilt addon that cannot load), then used from
 * ES modules, CommonJS and TypeScript as users write them.
 */

const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');
/** The oldest TypeScript the README promises, from its own workspace (test/typescript-5.0). */
const TSC_OLDEST = path.join(ROOT, 'test/typescript-5.0/node_modules/typescript/bin/tsc');

/** Commits through the default io ('native') and reads it back: works only if the addon loaded. */
const NATIVE_ROUND_TRIP = `
import { Wal } from 'segwal';
const dir = new URL('./native-log', import.meta.url).pathname;
const { wal } = await Wal.open({ dir, codec: 'utf8', sync: 'per-commit' });
await wal.commit(['through the addon']);
await wal.close();
const { wal: again, events } = await Wal.open({ dir, codec: 'utf8' });
await again.close();
console.log(events.join());
`;

/** What a user without the addon sees: the default io's error, and io: 'js' at work. */
const WITHOUT_ADDON = `
import { Wal } from 'segwal';
const dir = new URL('./js-log', import.meta.url).pathname;
const native = await Wal.open({ dir }).then(() => 'opened', (error) => ({ code: error.code, message: error.message }));
const { wal } = await Wal.open({ dir, io: 'js', codec: 'utf8' });
await wal.commit(['through node:fs']);
await wal.close();
const { wal: again, events } = await Wal.open({ dir, io: 'js', codec: 'utf8' });
await again.close();
console.log(JSON.stringify({ native, events }));
`;

function tsconfig(project: string, name: string, compilerOptions: Record<string, unknown>, files: string[]): string {
  const options = {
    target: 'es2022',
    strict: true,
    skipLibCheck: false,
    types: ['node'],
    typeRoots: [path.join(ROOT, 'node_modules/@types')],
    ...compilerOptions,
  };
  fs.writeFileSync(path.join(project, name), JSON.stringify({ compilerOptions: options, files }));
  return name;
}

function installedFile(project: string, file: string): string {
  return path.join(project, 'node_modules/segwal', file);
}

let packed: Packed;

beforeAll(() => {
  packed = packPackage();
}, 120_000);

describe('the tarball', () => {
  it('holds the LICENSE, the docs the README links to, the prebuilt addon and the install script; no source map and no source', () => {
    const { files } = packed;
    for (const file of ['LICENSE', 'README.md', 'binding.gyp', 'native/addon.cc', 'scripts/install.mjs', 'prebuilds/linux-x64/segwal_native.node']) {
      expect(files).toContain(file);
    }
    expect(fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8')).toMatch(/^MIT License\n/);
    const links = [...README.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1]!.split('#')[0]!).filter((link) => link !== '' && !/^[a-z]+:/.test(link));
    expect(links.length).toBeGreaterThan(0);
    expect(links.filter((link) => !files.includes(link))).toEqual([]);
    expect(files.filter((file) => file.endsWith('.map') || file.startsWith('src/') || file.startsWith('test/'))).toEqual([]);
  });

  it('its prebuilt addon needs no newer glibc or libstdc++ than Node 20 itself, and the README says which versions', () => {
    const dir = path.dirname(packed.tarball);
    runOk('tar', ['-xzf', packed.tarball, '-C', dir, 'package/prebuilds/linux-x64/segwal_native.node'], dir);
    const references = runOk('objdump', ['-p', path.join(dir, 'package/prebuilds/linux-x64/segwal_native.node')], dir).stdout;
    // Node 20's official linux-x64 binary needs glibc 2.28 and libstdc++ up to GLIBCXX_3.4.21 / CXXABI_1.3.9.
    const nodeNeeds: Record<string, string> = { GLIBC: '2.28', GLIBCXX: '3.4.21', CXXABI: '1.3.9' };
    for (const [family, limit] of Object.entries(nodeNeeds)) {
      const versions = [...references.matchAll(new RegExp(`\\b${family}_([\\d.]+)\\b`, 'g'))].map((match) => match[1]!);
      const newest = versions.sort(compareVersions).at(-1)!;
      expect(compareVersions(newest, limit), `${family}_${newest}`).toBeLessThanOrEqual(0);
      expect(README).toContain(`${family}_${newest}`);
    }
  });
});

describe('installed normally', () => {
  let project: string;
  let install: string;

  beforeAll(() => {
    project = newProject('commonjs'); // what `npm init -y` makes
    const result = npmInstall(project, packed.tarball);
    install = result.stdout + result.stderr;
  }, 60_000);

  it('loads the prebuilt addon and compiles nothing', () => {
    expect(install).not.toMatch(/gyp/);
    expect(fs.existsSync(installedFile(project, 'build'))).toBe(false);
    expect(runScript(project, 'native.mjs', NATIVE_ROUND_TRIP)).toMatchObject({ status: 0, stdout: 'through the addon\n', stderr: '' });
  });

  it("runs the README's first example as written, in at most ten lines", () => {
    const example = /```js\n([\s\S]*?)```/.exec(README)![1]!;
    expect(README.indexOf('npm install segwal')).toBeLessThan(README.indexOf(example));
    expect(example.split('\n').filter((line) => line.trim() !== '').length).toBeLessThanOrEqual(10);
    expect(runScript(project, 'example.mjs', example)).toMatchObject({ status: 0, stdout: 'recovered 0 transactions: []\n', stderr: '' });
    expect(runScript(project, 'example.mjs', example)).toMatchObject({
      status: 0,
      stdout: "recovered 2 transactions: [ 'hello', 'world', 'step 1', 'step 2' ]\n",
    });
  });

  it("installs the segwal bin, and its --version is the installed package's", () => {
    const { version } = JSON.parse(fs.readFileSync(installedFile(project, 'package.json'), 'utf8')) as { version: string };
    expect(run(path.join(project, 'node_modules/.bin/segwal'), ['--version'], project)).toEqual({ status: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('without the NATS clients (optional peers, not installed): inspect works; ship, follow and restore say what to install (exit 2)', () => {
    expect(fs.existsSync(path.join(project, 'node_modules/@nats-io'))).toBe(false);
    const bin = path.join(project, 'node_modules/.bin/segwal');
    const log = "import { Wal } from 'segwal'; const { wal } = await Wal.open({ dir: 'cli-log', codec: 'utf8' }); await wal.commit(['one']); await wal.close();";
    expect(runScript(project, 'cli-log.mjs', log)).toMatchObject({ status: 0, stderr: '' });
    expect(run(bin, ['inspect', 'cli-log'], project)).toMatchObject({ status: 0, stderr: '' });
    for (const command of ['ship', 'follow', 'restore']) {
      expect(run(bin, [command, 'cli-log', '--servers', 'nats://127.0.0.1:4222', '--stream', 'app'], project)).toEqual({
        status: 2,
        stdout: '',
        stderr: `segwal ${command}: needs the NATS clients, which segwal leaves optional: install them next to it (npm install @nats-io/transport-node @nats-io/jetstream)\n`,
      });
    }
  });

  it("require('segwal') works from CommonJS, without a warning", () => {
    const consumer = `
      const { Wal, WalError, codecs } = require('segwal');
      const dir = require('node:path').join(__dirname, 'cjs-log');
      Wal.open({ dir, codec: codecs.utf8 }).then(async ({ wal }) => {
        await wal.commit(['from require']);
        await wal.close();
        console.log(typeof WalError, Wal.openSync({ dir, codec: 'utf8' }).events.join());
      });
    `;
    expect(runScript(project, 'consumer.js', consumer)).toMatchObject({ status: 0, stdout: 'function from require\n', stderr: '' });
  });

  it('a TypeScript `module: nodenext` CommonJS consumer type-checks (strict, skipLibCheck off), compiles to require() and runs', () => {
    fs.writeFileSync(
      path.join(project, 'main.ts'),
      `import { Wal } from 'segwal';

      async function main(): Promise<void> {
        const dir = \`\${__dirname}/ts-log\`;
        const { wal } = await Wal.open({ dir, codec: 'utf8' });
        await wal.commit(['typed as strings']);
        await wal.close();
        const { wal: again, events } = await Wal.open({ dir, codec: 'utf8' });
        await again.close();
        const shouted: string[] = events.map((event) => event.toUpperCase());
        console.log(shouted.join());
      }
      void main();
      `,
    );
    runOk(process.execPath, [TSC, '-p', tsconfig(project, 'tsconfig.json', { module: 'nodenext', outDir: 'out' }, ['main.ts'])], project);
    expect(fs.readFileSync(path.join(project, 'out/main.js'), 'utf8')).toContain('require("segwal")');
    expect(runOk(process.execPath, ['out/main.js'], project)).toMatchObject({ stdout: 'TYPED AS STRINGS\n', stderr: '' });
  });

  it('TypeScript 5.0 type-checks (skipLibCheck off) and compiles an ES module consumer and a CommonJS one with node10 resolution', () => {
    fs.writeFileSync(
      path.join(project, 'oldest.mts'),
      `import { Wal, replayDir, type Codec } from 'segwal';

      const shouting: Codec<string> = { name: 'shouting', encode: (event) => Buffer.from(event.toUpperCase()), decode: (bytes) => bytes.toString() };
      const dir = new URL('./ts50-log', import.meta.url).pathname;
      const { wal } = await Wal.open({ dir, codec: shouting });
      await wal.commit(['typed by the codec object']);
      await wal.close();
      const { events } = await replayDir(dir, { codec: 'utf8' });
      const first: string | undefined = events[0];
      console.log(first);
      `,
    );
    fs.writeFileSync(
      path.join(project, 'legacy.ts'),
      `import { Wal } from 'segwal';

      Wal.open({ dir: __dirname + '/ts50-cjs-log', codec: 'json' }).then(async ({ wal, events }) => {
        await wal.commit([{ legacy: true }]);
        await wal.close();
        const seen: unknown[] = events;
        console.log(seen.length);
      });
      `,
    );
    expect(runOk(process.execPath, [TSC_OLDEST, '-v'], project).stdout).toBe('Version 5.0.4\n');
    runOk(process.execPath, [TSC_OLDEST, '-p', tsconfig(project, 'tsconfig.esm.json', { module: 'nodenext', outDir: 'out50' }, ['oldest.mts'])], project);
    const legacy = tsconfig(project, 'tsconfig.node10.json', { module: 'commonjs', moduleResolution: 'node10', outDir: 'out50' }, ['legacy.ts']);
    runOk(process.execPath, [TSC_OLDEST, '-p', legacy], project);
    expect(runOk(process.execPath, ['out50/oldest.mjs'], project).stdout).toBe('TYPED BY THE CODEC OBJECT\n');
    expect(runOk(process.execPath, ['out50/legacy.js'], project).stdout).toBe('0\n');
  });
});

it('with no compiler on PATH, install compiles nothing (the prebuilt addon loads) and the addon works', () => {
  const project = newProject('module');
  const noCompiler = withoutCompiler();
  npmInstall(project, packed.tarball, { env: noCompiler.env });
  expect(noCompiler.calls()).toEqual([]);
  expect(runScript(project, 'native.mjs', NATIVE_ROUND_TRIP)).toMatchObject({ status: 0, stdout: 'through the addon\n' });
});

it('with install scripts disabled (--ignore-scripts; pnpm and bun by default), the prebuilt addon loads at run time', () => {
  const project = newProject('module');
  npmInstall(project, packed.tarball, { flags: ['--ignore-scripts'] });
  expect(runScript(project, 'native.mjs', NATIVE_ROUND_TRIP)).toMatchObject({ status: 0, stdout: 'through the addon\n' });
});

describe('when the prebuilt addon does not load (another libc or CPU)', () => {
  let tarball: string;

  beforeAll(() => {
    tarball = withUnloadablePrebuilt(packed.tarball);
  });

  it("and no compiler works: install succeeds and says so; io: 'js' works, io: 'native' fails with WAL_IO saying how to get the addon", () => {
    const project = newProject('module');
    const noCompiler = withoutCompiler();
    const install = npmInstall(project, tarball, { env: noCompiler.env });
    expect(noCompiler.calls()).not.toEqual([]);
    expect(install.stderr).toContain("segwal: installed without its native addon; `io: 'js'` works.");
    expect(install.stderr).toMatch(/prebuilt binary: does not load here: .*segwal_native\.node/);
    expect(install.stderr).toContain('build from source: node-gyp rebuild failed');
    expect(install.stderr).toContain('run `npm rebuild segwal`');
    const used = runScript(project, 'without-addon.mjs', WITHOUT_ADDON);
    expect(JSON.parse(used.stdout)).toEqual({
      native: { code: 'WAL_IO', message: expect.stringMatching(/native addon could not be loaded.*`io: 'js'`.*npm rebuild segwal/) },
      events: ['through node:fs'],
    });
  });

  it('and a compiler works: install builds the addon from source, and it loads', () => {
    const project = newProject('module');
    const install = npmInstall(project, tarball);
    expect(install.stdout + install.stderr).toMatch(/gyp info ok/);
    expect(fs.existsSync(installedFile(project, 'build/Release/segwal_native.node'))).toBe(true);
    expect(runScript(project, 'native.mjs', NATIVE_ROUND_TRIP)).toMatchObject({ status: 0, stdout: 'through the addon\n' });
  });
});

function compareVersions(a: string, b: string): number {
  const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const difference = (x[i] ?? 0) - (y[i] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}
