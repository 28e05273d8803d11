import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { Wal, WalError } from '../../src/index.js';
import { jsIo } from '../../src/io/js.js';
import { followStream, restoreFromStream, ship } from '../../src/jetstream/index.js';
import { committed, replayed } from '../helpers/copies.js';
import { useCluster } from '../helpers/nats-cluster.js';
import { tempDir } from '../helpers/temp-dir.js';

const cluster = useCluster({ nodes: 3 });

/** A primary with small and chunked transactions, interleaved and aborted ones, shipped to `stream`. */
async function shippedPrimary(stream: string, commits: number): Promise<{ dir: string; lastCommitLsn: number }> {
  const dir = tempDir();
  const { wal } = await Wal.open({ dir, sync: 'per-commit', segmentBytes: 64 * 1024 });
  const shipper = await ship(wal, { servers: cluster().servers, stream, maxMessageBytes: 64 * 1024 });
  const open = wal.begin();
  open.append(Buffer.from('begun first, committed last'));
  for (let i = 0; i < commits; i++) {
    await wal.commit([Buffer.from(`commit ${i}`), Buffer.from('y'.repeat(i % 40))]);
    if (i === Math.floor(commits / 2)) await wal.commit([Buffer.alloc(200 * 1024, 'c')]);
    if (i % 7 === 0) {
      const aborted = wal.begin();
      aborted.append(Buffer.from(`aborted ${i}`));
      aborted.abort();
    }
  }
  const { commitLsn } = await open.commit();
  await shipper.acknowledged(commitLsn);
  await shipper.close();
  await wal.close();
  return { dir, lastCommitLsn: commitLsn };
}

describe('following a shipped log', () => {
  it('a live follower rebuilds the log: the same transactions at the same LSNs, replayed the same way', async () => {
    const { dir, lastCommitLsn } = await shippedPrimary('follow-live', 60);
    const replica = tempDir();
    const follower = await followStream({ servers: cluster().servers, stream: 'follow-live', dir: replica });
    await expect.poll(() => follower.status().appliedCommitLsn, { timeout: 20_000 }).toBe(lastCommitLsn);
    const status = await follower.close();
    expect(status).toMatchObject({ state: 'stopped', appliedCommitLsn: lastCommitLsn, lastError: null });
    expect(status.streamSeq).toBeGreaterThan(0);
    const primary = await committed(dir);
    expect(primary.length).toBe(62);
    expect(await committed(replica)).toEqual(primary);
    expect(await replayed(replica, true)).toEqual(await replayed(dir, false));
  });

  it('a replica poisoned in the background (its group fsync fails) ends following at once, on a quiet stream too', async () => {
    const { lastCommitLsn } = await shippedPrimary('follow-poisoned', 1);
    // Every fsync of the replica after its first applied write fails: the group timer's, with no message to come.
    // (Group mode writes on the event loop, with the blocking call; it fsyncs off the loop.)
    let wrote = false;
    const appendFrames = jsIo.sync.appendFrames;
    const datasync = jsIo.async.datasync;
    const writes = vi.spyOn(jsIo.sync, 'appendFrames').mockImplementation((...args) => {
      const written = appendFrames(...args);
      wrote = true;
      return written;
    });
    const fsyncs = vi.spyOn(jsIo.async, 'datasync').mockImplementation(async (fd) => {
      if (wrote) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO', errno: -5, syscall: 'fdatasync' });
      return datasync(fd);
    });
    onTestFinished(() => (writes.mockRestore(), fsyncs.mockRestore()));
    const follower = await followStream({ servers: cluster().servers, stream: 'follow-poisoned', dir: tempDir(), io: 'js' });
    const ended = await Promise.race([
      follower.done.then(
        () => 'resolved',
        (error: unknown) => error,
      ),
      new Promise((resolve) => setTimeout(() => resolve('still following after 10 s'), 10_000)),
    ]);
    expect(ended).toMatchObject({ code: 'WAL_POISONED', message: expect.stringMatching(/EIO/) });
    expect(follower.status()).toMatchObject({ state: 'failed', appliedCommitLsn: lastCommitLsn, lastError: expect.stringMatching(/EIO/) });
  });

  it('a replica whose close fails (its final fsync) fails the restore: done rejects, the state is failed, nothing says restored', async () => {
    const { lastCommitLsn } = await shippedPrimary('follow-close-fails', 3);
    // Only close's fsync fails: the group timer (a minute) never fsyncs before it.
    let closing = false;
    const close = Wal.prototype.close;
    const closes = vi.spyOn(Wal.prototype, 'close').mockImplementation(function (this: Wal) {
      closing = true;
      return close.call(this);
    });
    const datasync = jsIo.async.datasync;
    const fsyncs = vi.spyOn(jsIo.async, 'datasync').mockImplementation(async (fd) => {
      if (closing) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO', errno: -5, syscall: 'fdatasync' });
      return datasync(fd);
    });
    onTestFinished(() => (closes.mockRestore(), fsyncs.mockRestore()));
    const options = { servers: cluster().servers, stream: 'follow-close-fails', io: 'js', sync: { mode: 'group', intervalMs: 60_000 } } as const;

    await expect(restoreFromStream({ ...options, dir: tempDir() })).rejects.toMatchObject({ code: 'WAL_POISONED', message: expect.stringMatching(/EIO/) });
    closing = false;
    const follower = await followStream({ ...options, dir: tempDir(), untilCommitLsn: lastCommitLsn });
    await expect(follower.done).rejects.toMatchObject({ code: 'WAL_POISONED', message: expect.stringMatching(/EIO/) });
    expect(follower.status()).toMatchObject({ state: 'failed', appliedCommitLsn: lastCommitLsn, lastError: expect.stringMatching(/EIO/) });
  });

  it('a follower that fails keeps its failure as the one reported, and a failed close of its replica is a warning, not silence', async () => {
    await shippedPrimary('follow-both-fail', 1);
    const diverged = new WalError('WAL_REPLICATION_DIVERGED', 'the stream changed under the replica');
    const appends = vi.spyOn(Wal.prototype, 'appendReplicated').mockRejectedValue(diverged);
    const close = Wal.prototype.close;
    const closes = vi.spyOn(Wal.prototype, 'close').mockImplementation(async function (this: Wal) {
      await close.call(this);
      throw new WalError('WAL_IO', 'close failed: EIO: i/o error, close');
    });
    const warnings = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    onTestFinished(() => (appends.mockRestore(), closes.mockRestore(), warnings.mockRestore()));
    const replica = tempDir();
    const follower = await followStream({ servers: cluster().servers, stream: 'follow-both-fail', dir: replica });
    await expect(follower.done).rejects.toBe(diverged);
    expect(follower.status()).toMatchObject({ state: 'failed', lastError: diverged.message });
    expect(warnings).toHaveBeenCalledWith(`segwal/jetstream: closing the replica in ${replica} failed too: close failed: EIO: i/o error, close`, {
      code: 'SEGWAL_REPLICA_CLOSE_FAILED',
    });
  });

  it('a restore stops at a commit LSN, and a second one goes on from where the replica stands; promotion continues the LSNs', async () => {
    const { dir, lastCommitLsn } = await shippedPrimary('follow-resume', 40);
    const primary = await committed(dir);
    const middle = primary[20]!.commitLsn;
    const replica = tempDir();
    const first = await restoreFromStream({ servers: cluster().servers, stream: 'follow-resume', dir: replica, untilCommitLsn: middle });
    expect(first.appliedCommitLsn).toBe(middle);
    expect(await committed(replica)).toEqual(primary.filter((tx) => tx.commitLsn <= middle));
    const second = await restoreFromStream({ servers: cluster().servers, stream: 'follow-resume', dir: replica });
    expect(second).toMatchObject({ state: 'stopped', appliedCommitLsn: lastCommitLsn });
    expect(await committed(replica)).toEqual(primary);

    // The replica refuses writes of its own; opened as a primary, it goes on after the last shipped commit.
    const { wal: asReplica } = await Wal.open({ dir: replica, replica: true });
    expect(() => asReplica.begin()).toThrow(WalError);
    await asReplica.close();
    const { wal: promoted } = await Wal.open({ dir: replica });
    const next = await promoted.commit([Buffer.from('after promotion')]);
    expect(next!.beginLsn).toBe(lastCommitLsn + 1);
    await promoted.close();
  });

  it('a replica of one log refuses the stream of another, and a primary directory is not a replica', async () => {
    await shippedPrimary('follow-one', 3);
    await shippedPrimary('follow-other', 3);
    const replica = tempDir();
    await restoreFromStream({ servers: cluster().servers, stream: 'follow-one', dir: replica });
    const other = restoreFromStream({ servers: cluster().servers, stream: 'follow-other', dir: replica });
    await expect(other).rejects.toMatchObject({ code: 'WAL_REPLICATION_CONFLICT' });

    const primaryDir = tempDir();
    const { wal } = await Wal.open({ dir: primaryDir });
    await wal.commit([Buffer.from('mine')]);
    await wal.close();
    await expect(restoreFromStream({ servers: cluster().servers, stream: 'follow-one', dir: primaryDir })).rejects.toBeInstanceOf(WalError);
    // Nothing of the primary changed.
    expect((await committed(primaryDir)).map((tx) => tx.events)).toEqual([['mine']]);
  });

  it('a signal aborted before following starts ends it at once; a caught-up replica that resumes reports no lag for what it applied before', async () => {
    const { lastCommitLsn } = await shippedPrimary('follow-abort', 5);
    const aborted = new AbortController();
    aborted.abort();
    const replica = tempDir();
    const never = await followStream({ servers: cluster().servers, stream: 'follow-abort', dir: replica, signal: aborted.signal });
    expect(await never.done).toMatchObject({ state: 'stopped', appliedCommitLsn: 0 });

    await restoreFromStream({ servers: cluster().servers, stream: 'follow-abort', dir: replica });
    // Stored a while ago: applying it now would show that age as lag.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const resumed = await followStream({ servers: cluster().servers, stream: 'follow-abort', dir: replica });
    await expect.poll(() => resumed.status().streamSeq, { timeout: 10_000 }).toBeGreaterThan(0);
    expect(resumed.status()).toMatchObject({ appliedCommitLsn: lastCommitLsn, lagMs: 0 });
    await resumed.close();
  });

  it('bad options are refused with WAL_INVALID_OPTIONS', async () => {
    await expect(followStream({ servers: [], stream: 's', dir: tempDir() })).rejects.toMatchObject({ code: 'WAL_INVALID_OPTIONS' });
    await expect(restoreFromStream({ servers: cluster().servers, stream: 's', dir: tempDir(), untilCommitLsn: 0 })).rejects.toMatchObject({ code: 'WAL_INVALID_OPTIONS' });
    // The replica's sync option is checked as Wal.open checks it, before connecting (nothing listens on port 1).
    for (const sync of [{}, null, { mode: 'group', intervalMs: -5 }, 'sometimes']) {
      await expect(followStream({ servers: ['nats://127.0.0.1:1'], stream: 's', dir: tempDir(), sync } as never)).rejects.toMatchObject({
        code: 'WAL_INVALID_OPTIONS',
        message: expect.stringContaining('sync'),
      });
    }
  });
});
