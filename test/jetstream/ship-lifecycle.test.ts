import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Wal, WalError } from '../../src/index.js';
import { ship } from '../../src/jetstream/index.js';
import { tempDir } from '../helpers/temp-dir.js';

/*
 * What ship(wal) leaves behind when it does not start, and what its limit
 * check does once the Wal is closed. One nats-server (no cluster: nothing here
 * needs replicas); SIGSTOP makes it a stream that never acknowledges.
 */

/** ship.ts checks the limit this often. */
const LIMIT_CHECK_MS = 100;
const LIMIT_BYTES = 16 * 1024;

interface Server {
  url: string;
  monitor: string;
  /** SIGSTOP: nothing published is acknowledged until `resume`. */
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

async function startServer(): Promise<Server> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segwal-nats-'));
  const child: ChildProcess = spawn('nats-server', ['-a', '127.0.0.1', '-p', '-1', '-m', '-1', '-js', '-sd', dir, '--ports_file_dir', dir], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const portsFile = path.join(dir, `nats-server_${child.pid}.ports`);
  await vi.waitFor(() => expect(fs.existsSync(portsFile)).toBe(true), { timeout: 10_000, interval: 20 });
  const ports = JSON.parse(fs.readFileSync(portsFile, 'utf8')) as { nats: string[]; monitoring: string[] };
  return {
    url: ports.nats[0]!,
    monitor: ports.monitoring[0]!,
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    async close() {
      child.kill('SIGKILL');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

let server: Server;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.close();
});

const uncaught: unknown[] = [];
const onUncaught = (error: unknown) => uncaught.push(error);
beforeEach(() => {
  uncaught.length = 0;
  process.on('uncaughtException', onUncaught);
});
afterEach(() => {
  process.off('uncaughtException', onUncaught);
  server.resume();
});

async function connections(): Promise<number> {
  const response = await fetch(`${server.monitor}/connz`);
  return ((await response.json()) as { num_connections: number }).num_connections;
}

/** Commits until the log spans several segments. */
async function fill(wal: Wal): Promise<void> {
  while (wal.activeSegmentId - wal.oldestSegmentId < 3) await wal.commit([Buffer.alloc(1000, 'e')]);
}

/** Segments a checkpoint and a truncation of everything durable delete from the front of the log. */
async function truncated(wal: Wal): Promise<number> {
  const before = wal.oldestSegmentId;
  await wal.checkpoint(() => undefined);
  await wal.truncateUpTo(wal.durableLsn);
  return wal.oldestSegmentId - before;
}

describe('ship(wal) that fails at startup', () => {
  it('refused: rejects with WAL_REPLICATION, and truncation deletes old segments as on a log never shipped', async () => {
    const { wal: shipped } = await Wal.open({ dir: tempDir(), segmentBytes: 64 * 1024 });
    const { wal: never } = await Wal.open({ dir: tempDir(), segmentBytes: 64 * 1024 });
    await expect(ship(shipped, { servers: ['nats://127.0.0.1:1'], stream: 'refused' })).rejects.toMatchObject({ code: 'WAL_REPLICATION' });
    for (const wal of [shipped, never]) await fill(wal);
    const unshipped = await truncated(never);
    expect(unshipped).toBeGreaterThan(0);
    expect(await truncated(shipped)).toBe(unshipped);
    await shipped.close();
    await never.close();
  });

  it('given no Wal: rejects with WAL_INVALID_OPTIONS before connecting', async () => {
    for (const notAWal of [null, undefined, {}, 'dir']) {
      await expect(ship(notAWal as never, { servers: [server.url], stream: 'no-wal' })).rejects.toMatchObject({
        code: 'WAL_INVALID_OPTIONS',
        message: expect.stringMatching(/^ship\(wal, options\): wal must be an open Wal/),
      });
    }
    expect(await connections()).toBe(0);
  });

  it('the Wal closed while connecting: rejects with WAL_CLOSED, and closes the connection it made', async () => {
    const { wal } = await Wal.open({ dir: tempDir() });
    const shipping = ship(wal, { servers: [server.url], stream: 'closed-while-connecting', replicas: 1 });
    await wal.close();
    await expect(shipping).rejects.toMatchObject({ code: 'WAL_CLOSED' });
    await expect.poll(connections, { timeout: 3_000, interval: 50 }).toBe(0);
  });
});

/** A Wal shipping to `stream` with the small limit, its failures collected, once the server stops answering. */
async function shippingToPausedServer(stream: string) {
  const { wal } = await Wal.open({ dir: tempDir() });
  const handle = await ship(wal, { servers: [server.url], stream, replicas: 1, maxUnshippedBytes: LIMIT_BYTES });
  const failures: WalError[] = [];
  handle.on('failure', (error) => failures.push(error));
  await expect.poll(() => handle.status().state).toBe('shipping');
  server.pause();
  return { wal, handle, failures };
}

describe('the maxUnshippedBytes check', () => {
  it('over the limit when the Wal closes: no WAL_CLOSED thrown from the timer, and the handle still closes', async () => {
    const { wal, handle, failures } = await shippingToPausedServer('closed-over-limit');
    // Synchronous from the commit to the close: no check runs between them, so none holds commits before the close.
    wal.commitSync([Buffer.alloc(4 * LIMIT_BYTES, 'over')]);
    expect(handle.status()).toMatchObject({ holdingCommits: false, bytesBehind: expect.any(Number) });
    expect(handle.status().bytesBehind).toBeGreaterThan(LIMIT_BYTES);
    const closing = wal.close();
    await sleep(3 * LIMIT_CHECK_MS);
    await closing;
    expect(uncaught).toEqual([]);
    // The app closed the Wal: the check ends, it did not fail.
    expect(failures.map((error) => error.message)).not.toContainEqual(expect.stringContaining('maxUnshippedBytes'));
    server.resume();
    await handle.close();
    expect(handle.status().holdingCommits).toBe(false);
  });

  it('a failure of the check from the timer is heard as a failure, shipping stops, and nothing is thrown', async () => {
    const { wal, handle, failures } = await shippingToPausedServer('check-fails');
    const injected = new WalError('WAL_IO', 'injected: holdCommits failed');
    vi.spyOn(wal, 'holdCommits').mockImplementation(() => {
      throw injected;
    });
    wal.commitSync([Buffer.alloc(4 * LIMIT_BYTES, 'over')]);
    await expect.poll(() => failures.length, { timeout: 3 * LIMIT_CHECK_MS }).toBe(1);
    expect(failures[0]).toMatchObject({ code: 'WAL_REPLICATION', cause: injected });
    expect(handle.status().lastError).toBe(failures[0]!.message);
    await sleep(3 * LIMIT_CHECK_MS);
    expect(failures).toHaveLength(1);
    expect(uncaught).toEqual([]);
    server.resume();
    await handle.close();
    await wal.close();
  });
});
