import { describe, expect, it, onTestFinished } from 'vitest';
import { Wal, WalError } from '../src/index.js';
import { BACKENDS } from './helpers/backends.js';
import { events } from './helpers/bytes.js';
import { FaultIo, type Fault, type IoOp } from './helpers/fault-io.js';
import { serialized } from './helpers/serial-io.js';
import { tempDir } from './helpers/temp-dir.js';
import type { SyncMode } from '../src/types.js';
import type { LockToken, WalIo } from '../src/io/types.js';

interface WorkloadOutcome {
  /** Event ids whose commit resolved, in resolution order. */
  acknowledged: number[];
  /** Every rejection the workload saw. */
  rejections: unknown[];
  /** Event ids whose commit was attempted. */
  attempted: number[];
}

/** Pairs of concurrent commits with rotation, until 40 events or two rounds after the first failure. */
async function runWorkload(wal: Wal, mode: SyncMode): Promise<WorkloadOutcome> {
  const outcome: WorkloadOutcome = { acknowledged: [], rejections: [], attempted: [] };
  let roundsAfterFailure = 0;
  for (let id = 0; id < 40 && roundsAfterFailure < 2; id += 2) {
    const pair = [id, id + 1].map((eventId) => {
      outcome.attempted.push(eventId);
      return wal.commit([Buffer.from(`event-${eventId}-${'p'.repeat(80)}`)], { durable: mode !== 'none' }).then(
        () => void outcome.acknowledged.push(eventId),
        (error: unknown) => void outcome.rejections.push(error),
      );
    });
    await Promise.all(pair);
    if (outcome.rejections.length > 0) roundsAfterFailure++;
  }
  return outcome;
}

function eventIds(replayed: Buffer[]): number[] {
  return replayed.map((event) => Number(/^event-(\d+)-/.exec(event.toString())![1]));
}

const FAULTS: Array<[IoOp | 'fsync', Fault]> = [
  ['fsync', { errno: 'EIO' }],
  ['datasync', { errno: 'EIO' }],
  ['appendFrames', { errno: 'EIO' }],
  ['appendFrames', { errno: 'ENOSPC' }],
  ['appendFrames', 'short'],
  ['write', { errno: 'EIO' }],
  ['write', 'short'],
  ['allocate', { errno: 'ENOSPC' }],
  ['truncate', { errno: 'EIO' }],
  ['openSegment', { errno: 'EMFILE' }],
];

describe.each(BACKENDS)('poisoning on the $name backend', ({ io }) => {
  describe.each(FAULTS)('a failed %s (%o), injected at every call of the workload', (op, fault) => {
    it('poisons the Wal, rejects every pending and later commit with the first cause, and a reopen recovers what reached the disk', async () => {
      // How many calls of `op` the workload makes without faults: inject at each of them. One
      // async io call at a time (helpers/serial-io.ts): every run makes the same calls in the
      // same order, so the Nth call comes in the faulty run too.
      const probe = new FaultIo(serialized(io()));
      const probeWal = (await Wal.open({ dir: tempDir(), io: probe, sync: 'per-commit', segmentBytes: 1024 })).wal;
      const countOf = (io: FaultIo) => (op === 'fsync' ? io.fsyncs : io.count(op));
      const callsAtOpen = countOf(probe);
      await runWorkload(probeWal, 'per-commit');
      await probeWal.close();
      const calls = countOf(probe) - callsAtOpen;
      expect(calls).toBeGreaterThan(0);

      let rejectionsChecked = 0;
      for (let nth = 1; nth <= Math.min(calls, 24); nth++) {
        const dir = tempDir();
        const faulty = new FaultIo(serialized(io()));
        const { wal } = await Wal.open({ dir, io: faulty, sync: 'per-commit', segmentBytes: 1024 });
        const heard: WalError[] = [];
        wal.on('failure', (error) => heard.push(error));
        if (op === 'fsync') faulty.failNthFsync(nth, (fault as { errno: 'EIO' }).errno);
        else faulty.failNth(op, nth, fault);
        const outcome = await runWorkload(wal, 'per-commit');
        const context = `fault at call ${nth} of ${op}`;

        // The fault may hit the spare segment prepared in the background after the
        // workload's last commit; either way the Wal ends up poisoned.
        await expect.poll(() => wal.bgFailure, { timeout: 5000, interval: 5 }).toEqual(expect.any(String));
        expect(faulty.fired, context).toBe(1);
        // Every attempted commit settled once: no rejection means the fault came after the last commit.
        expect(outcome.acknowledged.length + outcome.rejections.length, context).toBe(outcome.attempted.length);
        rejectionsChecked += outcome.rejections.length;
        for (const rejection of outcome.rejections) {
          expect(rejection, context).toBeInstanceOf(WalError);
          expect((rejection as WalError).code, context).toBe('WAL_POISONED');
          expect((rejection as WalError).cause, context).toBeInstanceOf(WalError);
          expect((rejection as WalError).message, context).toContain(((rejection as WalError).cause as WalError).message);
        }
        // After the first rejection nothing resolves: acknowledgements are a prefix of the attempts.
        expect(outcome.acknowledged, context).toEqual(outcome.attempted.slice(0, outcome.acknowledged.length));
        await expect(wal.commit(events('later')), context).rejects.toMatchObject({ code: 'WAL_POISONED' });
        expect(() => wal.commitSync(events('later')), context).toThrow(expect.objectContaining({ code: 'WAL_POISONED' }));
        await expect(wal.sync(), context).rejects.toMatchObject({ code: 'WAL_POISONED' });
        expect(() => wal.begin(), context).toThrow(expect.objectContaining({ code: 'WAL_POISONED' }));
        // close releases the lock, then reports the poisoning: it never resolves on a poisoned log.
        await expect(wal.close(), context).rejects.toMatchObject({ code: 'WAL_POISONED', message: wal.bgFailure === null ? /./ : expect.stringContaining(wal.bgFailure) });
        // The first failure, and only it, reached the subscriber.
        expect(heard.map((error) => error.code), context).toEqual(['WAL_POISONED']);
        expect(heard[0]!.message, context).toContain(wal.bgFailure!);

        // close released the lock; the new open sees every acknowledged commit, in order, and nothing unattempted.
        const { wal: reopened, events: replayed } = await Wal.open({ dir, io: io() });
        const recovered = eventIds(replayed);
        expect(recovered.slice(0, outcome.acknowledged.length), context).toEqual(outcome.acknowledged);
        expect(recovered, context).toEqual(outcome.attempted.slice(0, recovered.length));
        await reopened.close();
      }
      // The checks of each rejection ran: some fault came while commits were pending.
      expect(rejectionsChecked).toBeGreaterThan(0);
    });
  });

  it('a failed fsync of the group timer is heard: the failure event carries it, and close releases the lock, then rejects WAL_POISONED', async () => {
    const dir = tempDir();
    const faulty = new FaultIo(io());
    const { wal } = await Wal.open({ dir, io: faulty, sync: { mode: 'group', intervalMs: 10 } });
    const heard = new Promise<WalError>((resolve) => wal.on('failure', resolve));
    faulty.failNthFsync(1, 'EIO');
    await wal.commit(events('written, not yet durable'));
    const failure = await heard;
    expect(failure).toMatchObject({ code: 'WAL_POISONED', message: expect.stringMatching(/EIO/), cause: expect.objectContaining({ code: 'WAL_IO', errno: expect.any(Number) }) });
    expect(faulty.fsyncCalls).toBeGreaterThan(0);
    expect(wal.bgFailure).toMatch(/EIO/);
    await expect(wal.commit(events('later'))).rejects.toMatchObject({ code: 'WAL_POISONED', cause: expect.objectContaining({ code: 'WAL_IO' }) });
    expect(wal.status().bgFailure).toBe(wal.bgFailure);
    await expect(wal.close()).rejects.toMatchObject({ code: 'WAL_POISONED', cause: failure.cause });
    // A second close reports the same, and the lock is free.
    await expect(wal.close()).rejects.toMatchObject({ code: 'WAL_POISONED' });
    const { wal: reopened } = await Wal.open({ dir, io: io() });
    await reopened.close();
  });

  it('with nobody subscribed, the first failure is a process warning', async () => {
    const faulty = new FaultIo(io());
    const { wal } = await Wal.open({ dir: tempDir(), io: faulty, sync: { mode: 'group', intervalMs: 10 } });
    const warned = new Promise<Error & { code?: string }>((resolve) => {
      const onWarning = (warning: Error & { code?: string }) => {
        if (warning.code !== 'SEGWAL_POISONED') return;
        process.off('warning', onWarning);
        resolve(warning);
      };
      process.on('warning', onWarning);
    });
    faulty.failNthFsync(1, 'EIO');
    await wal.commit(events('written, not yet durable'));
    const warning = await warned;
    expect(warning.message).toMatch(/poisoned.*EIO/);
    await expect(wal.close()).rejects.toMatchObject({ code: 'WAL_POISONED' });
  });

  it('a failed fsync in commitSync poisons the Wal; closeSync releases the lock, then throws WAL_POISONED', async () => {
    const dir = tempDir();
    const faulty = new FaultIo(io());
    const { wal } = Wal.openSync({ dir, io: faulty, sync: 'per-commit' });
    const heard: WalError[] = [];
    wal.on('failure', (error) => heard.push(error));
    wal.commitSync(events('acknowledged'));
    faulty.failNthFsync(1, 'EIO');
    expect(() => wal.commitSync(events('failed'))).toThrow(expect.objectContaining({ code: 'WAL_POISONED' }));
    expect(() => wal.flushSync()).toThrow(expect.objectContaining({ code: 'WAL_POISONED' }));
    expect(() => wal.closeSync()).toThrow(expect.objectContaining({ code: 'WAL_POISONED', cause: expect.objectContaining({ errno: expect.any(Number) }) }));
    expect(() => wal.closeSync()).toThrow(expect.objectContaining({ code: 'WAL_POISONED' }));
    const { wal: reopened, events: replayed } = Wal.openSync({ dir, io: io() });
    expect(replayed[0]).toEqual(Buffer.from('acknowledged'));
    reopened.closeSync();
    await new Promise((resolve) => process.nextTick(resolve));
    expect(heard.map((error) => error.code)).toEqual(['WAL_POISONED']);
  });

  it('a failed final fsync in close() poisons the log: the lock is released, then close rejects WAL_POISONED with the cause', async () => {
    const dir = tempDir();
    const faulty = new FaultIo(io());
    const { wal } = await Wal.open({ dir, io: faulty, sync: { mode: 'group', intervalMs: 60_000 } });
    wal.on('failure', () => undefined);
    await wal.commit(events('written'));
    faulty.failNthFsync(1, 'EIO');
    await expect(wal.close()).rejects.toMatchObject({ code: 'WAL_POISONED', cause: expect.objectContaining({ code: 'WAL_IO', errno: expect.any(Number) }) });
    const { wal: reopened, events: replayed } = await Wal.open({ dir, io: io() });
    expect(replayed).toEqual([Buffer.from('written')]);
    await reopened.close();
  });

  it.each(['async', 'sync'] as const)(
    'a failed release of the lock in %s close: close reports it as WAL_IO, the Wal is closed all the same (a waiting reader ends), and nothing written is lost',
    async (api) => {
      const dir = tempDir();
      const base = io();
      const { failing, held } = unlockFails(base);
      const { wal } = await Wal.open({ dir, io: failing, sync: 'per-commit' });
      await wal.commit(events('kept'));
      const reader = wal.readTransactions({ fromLsn: 1 });
      expect((await reader.next()).value?.events).toEqual([Buffer.from('kept')]);
      const waiting = reader.next();
      const refusal = api === 'async' ? await wal.close().catch((error: unknown) => error) : catching(() => wal.closeSync());
      expect(refusal).toBeInstanceOf(WalError);
      expect(refusal).toMatchObject({ code: 'WAL_IO', errno: 5, message: expect.stringMatching(/^close: releasing the lock on .* failed.*EIO/) });
      await expect(waiting).resolves.toMatchObject({ done: true });
      expect(wal.status().closed).toBe(true);
      await expect(wal.close()).rejects.toBe(refusal);
      expect(held).toHaveLength(1);
      base.sync.unlock(held[0] as LockToken);
      const { wal: reopened, events: replayed } = await Wal.open({ dir, io: base });
      expect(replayed).toEqual([Buffer.from('kept')]);
      await reopened.close();
    },
  );

  it('a failed release of the lock when close reports a poisoning is heard as a warning', async () => {
    const dir = tempDir();
    const base = io();
    const { failing, held } = unlockFails(base);
    const faulty = new FaultIo(failing);
    const { wal } = await Wal.open({ dir, io: faulty, sync: { mode: 'group', intervalMs: 60_000 } });
    wal.on('failure', () => undefined);
    await wal.commit(events('written'));
    faulty.failNthFsync(1, 'EIO');
    const warnings: Error[] = [];
    const listener = (warning: Error) => warnings.push(warning);
    process.on('warning', listener);
    onTestFinished(() => void process.off('warning', listener));
    await expect(wal.close()).rejects.toMatchObject({ code: 'WAL_POISONED' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(warnings).toContainEqual(expect.objectContaining({ code: 'SEGWAL_LOCK_RELEASE_FAILED', message: expect.stringMatching(/releasing the lock .*EIO/) }));
    base.sync.unlock(held[0] as LockToken);
  });
});

/** `base`, but releasing the lock fails with EIO (after taking note of the token, so the test can release it). */
function unlockFails(base: WalIo): { failing: WalIo; held: LockToken[] } {
  const held: LockToken[] = [];
  const failUnlock = (token: LockToken) => {
    held.push(token);
    throw Object.assign(new Error('EIO: i/o error, unlock'), { code: 'EIO', errno: -5, syscall: 'close' });
  };
  const failing: WalIo = {
    ...base,
    sync: { ...base.sync, unlock: failUnlock },
    async: { ...base.async, unlock: async (token) => failUnlock(token) },
  };
  return { failing, held };
}

function catching(call: () => unknown): unknown {
  try {
    call();
  } catch (error) {
    return error;
  }
  return null;
}
