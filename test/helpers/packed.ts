import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { ROOT } from './child.js';

/*
 * The package as a user gets it: packed from this checkout, installed into
 * fresh projects with the npm that runs the tests. Installs are --offline:
 * each project's lockfile pins segwal's dependencies to the versions this
 * checkout's `npm ci` put in the npm cache, so nothing is downloaded.
 */

const made: string[] = [];

/** A fresh directory that lives until the test file ends: the tarball and projects serve several tests. */
function scratchDir(label: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${label}-`));
  made.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function run(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Run {
  const result: SpawnSyncReturns<string> = spawnSync(command, args, { cwd, env, encoding: 'utf8' });
  if (result.error !== undefined) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Like `run`, but a non-zero exit is an error that shows the output. */
export function runOk(command: string, args: readonly string[], cwd: string, env?: NodeJS.ProcessEnv): Run {
  const result = run(command, args, cwd, env);
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}\n${result.stdout}\n${result.stderr}`);
  return result;
}

export interface Packed {
  tarball: string;
  /** Paths inside the package, as `npm pack` lists them. */
  files: string[];
}

/**
 * What `npm pack` makes, minus its `prepare` step: the prebuilt addon
 * (`build:prebuilt`, which prepack runs), the tarball, then postpack's
 * cleanup. dist/ is not rebuilt here: the suite's global setup built it, and
 * rebuilding it would rewrite files that other test files' children run.
 */
export function packPackage(): Packed {
  runOk('npm', ['run', '--silent', 'build:prebuilt'], ROOT);
  const into = scratchDir('segwal-pack');
  const packed = runOk('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', into], ROOT);
  runOk('npm', ['run', '--silent', 'postpack'], ROOT);
  const [info] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  return { tarball: path.join(into, info!.filename), files: info!.files.map((file) => file.path) };
}

/** A copy of the tarball whose prebuilt addon cannot load (as on another libc or CPU). */
export function withUnloadablePrebuilt(tarball: string): string {
  const dir = scratchDir('segwal-repack');
  runOk('tar', ['-xzf', tarball, '-C', dir], dir);
  fs.writeFileSync(path.join(dir, 'package/prebuilds/linux-x64/segwal_native.node'), 'not a shared object\n');
  const repacked = path.join(dir, 'segwal-unloadable-prebuilt.tgz');
  runOk('tar', ['-czf', repacked, '-C', dir, 'package'], dir);
  return repacked;
}

/** An empty project of the given module type, its lockfile pinning segwal's dependencies (see above). */
export function newProject(type: 'module' | 'commonjs'): string {
  const dir = scratchDir('segwal-consumer');
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type }));
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dependencies?: Record<string, string> }>;
  };
  const packages: Record<string, unknown> = { '': { name: 'consumer', version: '1.0.0' } };
  const pending = Object.keys(lock.packages['']!.dependencies ?? {});
  for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
    const entry = lock.packages[`node_modules/${name}`]!;
    packages[`node_modules/${name}`] = entry;
    pending.push(...Object.keys(entry.dependencies ?? {}).filter((dep) => !(`node_modules/${dep}` in packages)));
  }
  fs.writeFileSync(path.join(dir, 'package-lock.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages }));
  return dir;
}

/** `npm install <tarball>` in `project`, with the install script's output shown (--foreground-scripts). */
export function npmInstall(project: string, tarball: string, options: { flags?: string[]; env?: NodeJS.ProcessEnv } = {}): Run {
  const args = ['install', tarball, '--no-audit', '--no-fund', '--offline', '--foreground-scripts', ...(options.flags ?? [])];
  return runOk('npm', args, project, options.env);
}

/**
 * An environment without a C++ toolchain: cc, c++, gcc, g++, clang, clang++
 * and make on PATH fail, and each call is written to the returned log.
 */
export function withoutCompiler(): { env: NodeJS.ProcessEnv; calls: () => string[] } {
  const bin = scratchDir('segwal-no-compiler');
  const log = path.join(bin, 'calls.log');
  for (const tool of ['cc', 'c++', 'gcc', 'g++', 'clang', 'clang++', 'make']) {
    fs.writeFileSync(path.join(bin, tool), `#!/bin/sh\necho "${tool} $*" >> '${log}'\nexit 1\n`, { mode: 0o755 });
  }
  return {
    env: { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}` },
    calls: () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : []),
  };
}

/** Writes `source` to `file` in `project` and runs it with node. */
export function runScript(project: string, file: string, source: string): Run {
  fs.writeFileSync(path.join(project, file), source);
  return run(process.execPath, [file], project);
}
