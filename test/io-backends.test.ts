import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import { Wal } from '../src/index.js';
import { jsIo } from '../src/io/js.js';
import { createNativeIo } from '../src/io/native.js';
import { lockDirSync, pidFileLockAttempt, unlockDir } from '../src/io/dir-lock.js';
import { ROOT } from './helpers/child.js';
import { snapshotFiles, tempDir } from './helpers/temp-dir.js';

/** The same calls, through either API: a mix of commits, a multi-step tx, a checkpoint and rotations. */
async function scriptedLog(dir: string, io: 'native' | 'js', api: 'async' | 'sync'): Promise<void> {
  // One identity for every copy: the files are compared byte for byte, the id file included.
  const options = { dir, io, segmentBytes: 2048, sync: 'per-commit' as const, logId: 'a5'.repeat(16) };
  const { wal } = api === 'async' ? await Wal.open(options) : Wal.openSync(options);
  for (let i = 0; i < 40; i++) {
    const batch = [Buffer.from(`event ${i}`), Buffer.alloc(i * 3, i)];
    if (api === 'async') await wal.commit(batch);
    else wal.commitSync(batch);
  }
  const tx = wal.begin();
  tx.append(Buffer.from('step 1'));
  tx.appendBatch([Buffer.from('step 2'), Buffer.from('step 3')]);
  tx.commit();
  wal.checkpointMarker(10);
  if (api === 'async') await wal.close();
  else wal.closeSync();
}

describe('the two io backends', () => {
  it('write byte-identical files for the same calls, through the async and the sync API', async () => {
    const snapshots = [];
    for (const io of ['native', 'js'] as const) {
      for (const api of ['async', 'sync'] as const) {
        const dir = tempDir();
        await scriptedLog(dir, io, api);
        snapshots.push(snapshotFiles(dir));
      }
    }
    expect(snapshots[0]!.size).toBeGreaterThan(3);
    for (const snapshot of snapshots.slice(1)) expect(snapshot).toEqual(snapshots[0]);
  });

  it('read each other’s files and append to them', async () => {
    for (const [writer, reader] of [['native', 'js'], ['js', 'native']] as const) {
      const dir = tempDir();
      await scriptedLog(dir, writer, 'async');
      const { wal, events, recovery } = await Wal.open({ dir, io: reader, segmentBytes: 2048, checkpointLsn: 0 });
      expect(recovery.tornTail).toBeNull();
      expect(events.length).toBe(83);
      await wal.commit([Buffer.from('appended by the other backend')]);
      await wal.close();
      const { wal: again, events: all } = await Wal.open({ dir, io: writer });
      expect(all.at(-1)).toEqual(Buffer.from('appended by the other backend'));
      await again.close();
    }
  });

  it('compute the CRC-32 zlib computes, also when continued from a previous value', () => {
    const native = createNativeIo();
    const data = Buffer.from(Array.from({ length: 70_010 }, (_, i) => (i * 31 + 7 + (i >> 9)) & 0xff));
    // Every size across the native paths' switch points (table loop below 64 bytes, folding from 64
    // in 16-byte steps, zlib from 512 where the CPU cannot fold), at unaligned starts too.
    const sizes = [...Array.from({ length: 600 }, (_, i) => i), 1000, 4000, 65_536, 70_001];
    for (const start of [0, 1, 3]) {
      for (const size of sizes) {
        const slice = data.subarray(start, start + size);
        expect(native.crc32(slice)).toBe(zlibCrc32(slice));
        expect(jsIo.crc32(slice)).toBe(zlibCrc32(slice));
      }
    }
    for (const split of [5, 300, 511, 512, 1000]) {
      const continued = native.crc32(data.subarray(split), native.crc32(data.subarray(0, split)));
      expect(continued).toBe(zlibCrc32(data));
    }
    expect(native.crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('native segment files are created exclusively: creating an existing one fails with EEXIST', () => {
    const native = createNativeIo();
    const file = path.join(tempDir(), 'x.wal');
    native.sync.close(native.sync.openSegment(file, true));
    expect(() => native.sync.openSegment(file, true)).toThrow(expect.objectContaining({ code: 'EEXIST', syscall: 'open' }));
    expect(() => jsIo.sync.openSegment(file, true)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
  });

  it('native flags must be booleans: a call that leaves one out throws a TypeError and does nothing', async () => {
    const native = createNativeIo();
    const file = path.join(tempDir(), 'flags.wal');
    const fd = native.sync.openSegment(file, true);
    const loose = native.sync as unknown as Record<string, (...args: unknown[]) => unknown>;
    const looseAsync = native.async as unknown as Record<string, (...args: unknown[]) => unknown>;
    expect(() => loose.allocate?.(fd, 10_000)).toThrow(new TypeError('argument 2 must be a boolean'));
    expect(() => looseAsync.allocate?.(fd, 10_000)).toThrow(new TypeError('argument 2 must be a boolean'));
    expect(() => loose.appendFrames?.(fd, Buffer.alloc(16), 0, 1)).toThrow(new TypeError('argument 3 must be a boolean'));
    expect(() => loose.openSegment?.(path.join(tempDir(), 'other.wal'))).toThrow(new TypeError('argument 1 must be a boolean'));
    native.sync.close(fd);
    expect(fs.statSync(file).size).toBe(0);
  });

  it('native numbers and byte arguments are checked by type, and a view into a larger buffer is read from its own offset', async () => {
    const native = createNativeIo();
    const file = path.join(tempDir(), 'args.wal');
    const fd = native.sync.openSegment(file, true);
    const loose = native.sync as unknown as Record<string, (...args: unknown[]) => unknown>;
    expect(() => loose.write?.(String(fd), Buffer.alloc(4), 0)).toThrow(new TypeError('argument 0 must be a number'));
    expect(() => loose.write?.(fd, Buffer.alloc(4), '0')).toThrow(new TypeError('argument 2 must be a number'));
    for (const notBytes of ['text', new Uint16Array(4), new DataView(new ArrayBuffer(4)), [1, 2]]) {
      expect(() => loose.write?.(fd, notBytes, 0)).toThrow(new TypeError('argument 1 must be a Uint8Array'));
      expect(() => native.crc32(notBytes as unknown as Uint8Array)).toThrow(new TypeError('argument 0 must be a Uint8Array'));
    }
    expect(fs.statSync(file).size).toBe(0);

    const whole = Buffer.from('....segwal bytes at an offset....');
    const view = whole.subarray(4, whole.length - 4);
    expect(native.sync.write(fd, view, 0)).toBe(view.length);
    expect(native.crc32(view)).toBe(zlibCrc32(Buffer.from(view)));
    native.sync.close(fd);
    expect(fs.readFileSync(file).toString()).toBe('segwal bytes at an offset');
  });

  it.each([true, false])('native allocate (zeroFill %s) leaves zeros that read back like the js backend’s, and async forms match sync forms', async (zeroFill) => {
    const native = createNativeIo();
    const dir = tempDir();
    const syncFile = path.join(dir, 'sync.wal');
    const asyncFile = path.join(dir, 'async.wal');
    const fd = native.sync.openSegment(syncFile, true);
    native.sync.write(fd, Buffer.from('head'), 0);
    native.sync.allocate(fd, 10_000, zeroFill);
    native.sync.write(fd, Buffer.from('tail'), 5000);
    native.sync.datasync(fd);
    native.sync.close(fd);
    const afd = await native.async.openSegment(asyncFile, true);
    await native.async.write(afd, Buffer.from('head'), 0);
    await native.async.allocate(afd, 10_000, zeroFill);
    await native.async.write(afd, Buffer.from('tail'), 5000);
    await native.async.datasync(afd);
    await native.async.truncate(afd, 9000);
    await native.async.close(afd);
    const expected = Buffer.alloc(10_000);
    expected.write('head', 0);
    expected.write('tail', 5000);
    expect(fs.readFileSync(syncFile).equals(expected)).toBe(true);
    expect(fs.readFileSync(asyncFile).equals(expected.subarray(0, 9000))).toBe(true);
    await native.async.syncDir(dir);
    await expect(native.async.datasync(afd)).rejects.toMatchObject({ code: 'EBADF', syscall: 'fdatasync' });
  });
});

describe('the js backend\'s zero fill', () => {
  // Past one batch of writes in flight (64 × 16 KiB), and not a whole number of them.
  const SIZE = 1024 * 1024 + 70_000;

  it('writes zeros from the end of the file up to the size, sync and async alike', async () => {
    const dir = tempDir();
    for (const api of ['sync', 'async'] as const) {
      const file = path.join(dir, `${api}.wal`);
      const fd = jsIo.sync.openSegment(file, true);
      fs.writeSync(fd, Buffer.from('head'));
      if (api === 'sync') jsIo.sync.allocate(fd, SIZE, true);
      else await jsIo.async.allocate(fd, SIZE, true);
      jsIo.sync.close(fd);
      const expected = Buffer.alloc(SIZE);
      expected.write('head');
      expect(fs.readFileSync(file).equals(expected), api).toBe(true);
    }
  });

  it('fails with ENOSPC when the device takes a chunk only in part, even while the other writes in flight succeed', async () => {
    const file = path.join(tempDir(), 'full.wal');
    const fd = jsIo.sync.openSegment(file, true);
    const write = fs.write;
    vi.spyOn(fs, 'write').mockImplementation(((...args: unknown[]) => {
      const position = args[4] as number;
      const callback = args[5] as (error: Error | null, written: number) => void;
      // One chunk is written in part, then the device takes nothing more.
      if (position === 20 * 16 * 1024) return void setImmediate(() => callback(null, 100));
      if (position === 20 * 16 * 1024 + 100) return void setImmediate(() => callback(null, 0));
      return (write as (...a: unknown[]) => void)(...args);
    }) as typeof fs.write);
    try {
      await expect(jsIo.async.allocate(fd, SIZE, true)).rejects.toMatchObject({ code: 'ENOSPC' });
    } finally {
      vi.restoreAllMocks();
      jsIo.sync.close(fd);
    }
  });
});

describe('without the addon', () => {
  /** A copy of the built package with no build/ directory, so the addon cannot load. */
  function packageWithoutAddon(): string {
    const root = tempDir('segwal-noaddon');
    fs.cpSync(path.join(ROOT, 'dist'), path.join(root, 'dist'), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(root, 'package.json'));
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'));
    return root;
  }

  function run(entry: string, body: string, args: string[]): Promise<string> {
    const source = `import * as segwal from ${JSON.stringify(entry)};\n${body}`;
    return new Promise((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', source, '--', ...args], (error, stdout, stderr) =>
        error ? reject(new Error(stderr)) : resolve(stdout.trim()),
      );
    });
  }

  it('the default io fails with a WalError that says how to use io: "js"; io: "js" works and its pid-file lock excludes a second writer', async () => {
    const entry = path.join(packageWithoutAddon(), 'dist/index.js');
    const dir = tempDir();
    const tryDefault = `
      try { await segwal.Wal.open({ dir: process.argv[1] }); console.log('opened'); }
      catch (error) { console.log(JSON.stringify({ code: error.code, message: error.message })); }`;
    const failure = JSON.parse(await run(entry, tryDefault, [dir]));
    expect(failure.code).toBe('WAL_IO');
    expect(failure.message).toMatch(/native addon could not be loaded/);
    expect(failure.message).toContain("io: 'js'");

    const twoWriters = `
      const { wal } = await segwal.Wal.open({ dir: process.argv[1], io: 'js' });
      await wal.commit([Buffer.from('from the pid-locked writer')]);
      let second = 'opened';
      try { await segwal.Wal.open({ dir: process.argv[1], io: 'js' }); } catch (error) { second = error.code; }
      await wal.close();
      const again = await segwal.Wal.open({ dir: process.argv[1], io: 'js' });
      console.log(JSON.stringify({ second, events: again.events.map(String) }));
      await again.wal.close();`;
    expect(JSON.parse(await run(entry, twoWriters, [dir]))).toEqual({ second: 'WAL_ALREADY_OPEN', events: ['from the pid-locked writer'] });
  });

  it('the readers need no addon: with the default io they read through node:fs alone', async () => {
    const entry = path.join(packageWithoutAddon(), 'dist/index.js');
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js' });
    await wal.commit([Buffer.from('one'), Buffer.from('two')]);
    await wal.close();
    const readAll = `
      const replayed = await segwal.replayDir(process.argv[1]);
      const transactions = [];
      for await (const tx of segwal.readTransactions(process.argv[1])) transactions.push(tx.events.map(String));
      const records = [];
      for await (const record of segwal.readWal(process.argv[1])) records.push(record.lsn);
      console.log(JSON.stringify({ events: replayed.events.map(String), transactions, records }));`;
    expect(JSON.parse(await run(entry, readAll, [dir]))).toEqual({ events: ['one', 'two'], transactions: [['one', 'two']], records: [3] });
  });

  it('a failed open releases the pid-file lock: the .pid file is gone and the next open works', async () => {
    const entry = path.join(packageWithoutAddon(), 'dist/index.js');
    const dir = tempDir();
    const script = `
      const fs = await import('node:fs');
      const dir = process.argv[1];
      const { wal } = await segwal.Wal.open({ dir, io: 'js' });
      await wal.commit([Buffer.from('one')]);
      await wal.close();
      const file = dir + '/0000000001.wal';
      const good = fs.readFileSync(file);
      const bad = Buffer.from(good);
      bad[14] ^= 0xff;
      fs.writeFileSync(file, bad);
      let code = 'opened';
      try { await segwal.Wal.open({ dir, io: 'js' }); } catch (error) { code = error.code; }
      const pidFileLeft = fs.existsSync(dir + '/.segwal.lock.pid');
      fs.writeFileSync(file, good);
      const again = await segwal.Wal.open({ dir, io: 'js' });
      await again.wal.close();
      console.log(JSON.stringify({ code, pidFileLeft, events: again.events.map(String) }));`;
    expect(JSON.parse(await run(entry, script, [dir]))).toEqual({ code: 'WAL_BAD_SEGMENT_HEADER', pidFileLeft: false, events: ['one'] });
  });

  it('the pid-file lock is taken over when its owner died', () => {
    const dir = tempDir();
    const lockPath = path.join(dir, '.segwal.lock');
    // A pid that cannot be alive: above the kernel's pid_max.
    fs.writeFileSync(`${lockPath}.pid`, String(2 ** 22 + 1));
    const token = lockDirSync(lockPath, 0, pidFileLockAttempt);
    expect(fs.readFileSync(`${lockPath}.pid`, 'utf8')).toMatch(new RegExp(`^${process.pid} `));
    expect(() => lockDirSync(lockPath, 0, pidFileLockAttempt)).toThrow(expect.objectContaining({ code: 'EWOULDBLOCK' }));
    unlockDir(token);
    expect(fs.existsSync(`${lockPath}.pid`)).toBe(false);
  });
});
