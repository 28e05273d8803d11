import fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import { describe, expect, it } from 'vitest';
import { Wal, WalError, replayDir } from '../src/index.js';
import type { AsyncIoOps, IoOps, WalIo } from '../src/io/types.js';
import { BACKENDS } from './helpers/backends.js';
import { events, texts } from './helpers/bytes.js';
import { segmentPath } from './helpers/craft.js';
import { segmentNames, tempDir } from './helpers/temp-dir.js';

type IoOp = keyof IoOps;

function eio(op: IoOp): NodeJS.ErrnoException {
  return Object.assign(new Error(`EIO: injected failure of ${op}`), { code: 'EIO', errno: osConstants.errno.EIO, syscall: op });
}

/**
 * Wraps `inner` so that the first call matching `first(op, file)` fails with
 * EIO, and from then on every close and unlock fails too (after doing its
 * work, so nothing stays open or locked): the cleanup after a failure fails
 * as well, and only the first failure may be reported.
 */
function failingFrom(inner: WalIo, first: (op: IoOp, file: string) => boolean): WalIo {
  const files = new Map<unknown, string>();
  let failed = false;
  const fileOf = (op: IoOp, args: unknown[]): string =>
    op === 'openSegment' || op === 'openRead' || op === 'unlink' || op === 'rename' ? String(args[0]) : (files.get(args[0]) ?? '');
  const before = (op: IoOp, args: unknown[]): void => {
    if (!failed && first(op, fileOf(op, args))) {
      failed = true;
      throw eio(op);
    }
  };
  const after = (op: IoOp, args: unknown[], result: unknown): unknown => {
    if (op === 'openSegment' || op === 'openRead') files.set(result, String(args[0]));
    if (failed && (op === 'close' || op === 'unlock')) throw eio(op);
    return result;
  };
  const ops = Object.keys(inner.sync) as IoOp[];
  const sync = Object.fromEntries(
    ops.map((op) => [op, (...args: unknown[]) => (before(op, args), after(op, args, (inner.sync[op] as (...a: unknown[]) => unknown)(...args)))]),
  ) as unknown as IoOps;
  const async = Object.fromEntries(
    ops.map((op) => [
      op,
      async (...args: unknown[]) => (before(op, args), after(op, args, await (inner.async[op] as (...a: unknown[]) => Promise<unknown>)(...args))),
    ]),
  ) as unknown as AsyncIoOps;
  return { name: 'failing', sync, async, crc32: inner.crc32 };
}

/** What `Wal.open` and `Wal.openSync` throw (each must throw), each given a fresh io from `io`. */
async function openFailures(dir: string, io: () => WalIo): Promise<unknown[]> {
  const failures: unknown[] = [];
  await Wal.open({ dir, io: io() }).then(
    () => expect.unreachable('Wal.open succeeded'),
    (error: unknown) => void failures.push(error),
  );
  try {
    Wal.openSync({ dir, io: io() });
    expect.unreachable('Wal.openSync succeeded');
  } catch (error) {
    failures.push(error);
  }
  return failures;
}

function expectIoError(error: unknown, message: RegExp, file: string, syscall: string): void {
  expect(error).toBeInstanceOf(WalError);
  expect(error).toMatchObject({ code: 'WAL_IO', message, file, syscall, cause: expect.objectContaining({ syscall }) });
}

async function logOf(dir: string, io: WalIo, ...committed: string[]): Promise<void> {
  const { wal } = await Wal.open({ dir, io, sync: 'per-commit' });
  for (const text of committed) await wal.commit(events(text));
  await wal.close();
}

describe.each(BACKENDS)('open failures on the $name backend', ({ io }) => {
  it('a directory where the id temp file goes is WAL_IO naming it, and no segment is made', async () => {
    const dir = tempDir();
    const temp = `${dir}/.segwal.id.tmp`;
    fs.mkdirSync(temp);
    for (const error of await openFailures(dir, io)) {
      expectIoError(error, /^remove stale log id temp file failed: EISDIR/, temp, 'unlink');
    }
    expect(segmentNames(dir)).toEqual([]);
    expect(fs.statSync(temp).isDirectory()).toBe(true);
  });

  it('an id file that is a symlink loop is WAL_IO naming it for open, openSync and replayDir, the log untouched', async () => {
    const dir = tempDir();
    await logOf(dir, io(), 'kept');
    const id = `${dir}/.segwal.id`;
    fs.rmSync(id);
    fs.symlinkSync('.segwal.id', id);
    const segment = fs.readFileSync(segmentPath(dir, 1));
    const failures = await openFailures(dir, io);
    failures.push(await replayDir(dir, { io: io() }).catch((error: unknown) => error));
    for (const error of failures) expectIoError(error, /^open log id failed: ELOOP/, id, 'open');
    expect(fs.readFileSync(segmentPath(dir, 1)).equals(segment)).toBe(true); // toEqual walks 8 MiB byte by byte
    expect(fs.readlinkSync(id)).toBe('.segwal.id');
  });

  it.each([
    ['reading the id file', 'read', '.segwal.id', /^read log id failed: EIO/],
    ['the fsync of a new id file', 'datasync', '.segwal.id.tmp', /^fsync log id failed: EIO/],
  ] as const)('a failure of %s is the one reported, not the close and unlock after it', async (_, op, name, message) => {
    const dir = tempDir();
    if (op === 'read') await logOf(dir, io(), 'kept');
    const failing = () => failingFrom(io(), (called, file) => called === op && file === `${dir}/${name}`);
    for (const error of await openFailures(dir, failing)) {
      expectIoError(error, message, `${dir}/${name}`, op);
    }
  });

  it('a failed fsync of the quarantine file is the one reported, not its close; nothing is cut and the log reopens', async () => {
    const dir = tempDir();
    await logOf(dir, io(), 'one', 'two');
    const file = segmentPath(dir, 1);
    const end = fs.readFileSync(file).findLastIndex((byte) => byte !== 0) + 1;
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([9, 9, 9, 9, 9, 9, 9]), 0, 7, end + 3);
    fs.closeSync(fd);
    const damaged = fs.readFileSync(file);
    const failing = () => failingFrom(io(), (op, name) => op === 'datasync' && name.includes('.quarantine-'));
    for (const error of await openFailures(dir, failing)) {
      expect(error).toBeInstanceOf(WalError);
      expect(error).toMatchObject({ code: 'WAL_IO', message: /^fsync quarantine file failed: EIO/, cause: expect.objectContaining({ syscall: 'datasync' }) });
    }
    expect(fs.readFileSync(file).equals(damaged)).toBe(true);
    const { wal, events: replayed, recovery } = await Wal.open({ dir, io: io() });
    expect(texts(replayed)).toEqual(['one', 'two']);
    expect(recovery.tornTail?.quarantineFile).toBeDefined();
    await wal.close();
  });

  it('a failed fsync of the reopened segment is the one reported, not its close; the log reopens', async () => {
    const dir = tempDir();
    await logOf(dir, io(), 'one');
    const file = segmentPath(dir, 1);
    const failing = () => failingFrom(io(), (op, name) => op === 'datasync' && name === file);
    for (const error of await openFailures(dir, failing)) expectIoError(error, /^fsync segment failed: EIO/, file, 'datasync');
    const { wal, events: replayed } = await Wal.open({ dir, io: io() });
    expect(texts(replayed)).toEqual(['one']);
    await wal.close();
  });
});
