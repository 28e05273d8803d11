import { describe, expect, it } from 'vitest';
import { Wal, WalError } from '../src/index.js';
import type { AsyncIoOps, IoOps, WalIo } from '../src/io/types.js';
import { BACKENDS } from './helpers/backends.js';
import { events, texts } from './helpers/bytes.js';
import { FaultIo } from './helpers/fault-io.js';
import { tempDir } from './helpers/temp-dir.js';

/*
 * Writes on the event loop (docs/DESIGN.md): in sync modes group and none, a
 * batch nobody waits to see fsync'd is written by a blocking call from the
 * loop, at the end of the tick that staged it; everything that needs an
 * fsync, and every fsync, goes to the thread pool.
 */

type Call = `${'sync' | 'async'}:${keyof IoOps}${'' | '+fsync'}`;

/** `inner`, recording every append-path call as `sync:appendFrames`, `async:appendFrames+fsync`, `async:datasync`, … */
function recording(inner: WalIo): { io: WalIo; calls: Call[] } {
  const calls: Call[] = [];
  const watched = new Set<keyof IoOps>(['appendFrames', 'write', 'datasync']);
  const label = (form: 'sync' | 'async', op: keyof IoOps, args: unknown[]): Call =>
    `${form}:${op}${op === 'appendFrames' && args[3] === true ? '+fsync' : ''}` as Call;
  const wrap = <T extends IoOps | AsyncIoOps>(ops: T, form: 'sync' | 'async'): T =>
    Object.fromEntries(
      Object.entries(ops).map(([op, fn]) => [
        op,
        (...args: unknown[]) => {
          if (watched.has(op as keyof IoOps)) calls.push(label(form, op as keyof IoOps, args));
          return (fn as (...a: unknown[]) => unknown)(...args);
        },
      ]),
    ) as T;
  return { io: { name: inner.name, sync: wrap(inner.sync, 'sync'), async: wrap(inner.async, 'async'), crc32: inner.crc32 }, calls };
}

describe.each(BACKENDS)('writes on the event loop, $name backend', ({ io }) => {
  it.each(['group', 'none'] as const)('sync %s: the commits of one tick go out in one blocking write from the loop, never with an fsync', async (sync) => {
    const { io: watched, calls } = recording(io());
    const { wal } = await Wal.open({ dir: tempDir(), io: watched, sync, segmentBytes: 64 * 1024 });
    calls.length = 0;
    const acks = await Promise.all([wal.commit(events('a')), wal.commit(events('b')), wal.commit(events('c'))]);
    expect(acks.map((ack) => ack?.commitLsn)).toEqual([3, 6, 9]);
    expect(calls).toEqual(['sync:appendFrames']);
    await wal.commit(events('d'));
    expect(calls).toEqual(['sync:appendFrames', 'sync:appendFrames']);
    await wal.close();
    // close fsyncs on the pool.
    expect(calls.filter((call) => call.startsWith('sync:') && call !== 'sync:appendFrames')).toEqual([]);
    expect(calls.at(-1)).toMatch(/^async:(datasync|appendFrames\+fsync)$/);
  });

  it('a commit that waits for its fsync (durable: true) takes the hop: written and fsync\'d in one call on the pool', async () => {
    const { io: watched, calls } = recording(io());
    const { wal } = await Wal.open({ dir: tempDir(), io: watched, sync: 'group', segmentBytes: 64 * 1024 });
    calls.length = 0;
    await Promise.all([wal.commit(events('written')), wal.commit(events('durable'), { durable: true })]);
    expect(calls).toEqual(['async:appendFrames+fsync']);
    await wal.close();
  });

  it('writeOnLoop: false keeps every write on the thread pool', async () => {
    const { io: watched, calls } = recording(io());
    const { wal } = await Wal.open({ dir: tempDir(), io: watched, sync: 'none', segmentBytes: 64 * 1024, writeOnLoop: false });
    calls.length = 0;
    await Promise.all([wal.commit(events('a')), wal.commit(events('b'))]);
    await wal.commit(events('c'));
    expect(calls).toEqual(['async:appendFrames', 'async:appendFrames']);
    await wal.close();
  });

  it('per-commit mode never writes on the loop: every commit waits for an fsync', async () => {
    const { io: watched, calls } = recording(io());
    const { wal } = await Wal.open({ dir: tempDir(), io: watched, sync: 'per-commit', segmentBytes: 64 * 1024 });
    calls.length = 0;
    await Promise.all([wal.commit(events('a')), wal.commit(events('b'))]);
    expect(calls).toEqual(['async:appendFrames+fsync']);
    await wal.close();
  });

  it('the loop keeps turning under a closed loop of commits: a timer set while 64 writers commit fires and stops them', async () => {
    const { wal } = await Wal.open({ dir: tempDir(), io: io(), sync: 'group', segmentBytes: 64 * 1024 });
    let running = true;
    let commits = 0;
    setTimeout(() => (running = false), 1);
    // If writes ran in a microtask chain the timer would never fire and this would never end.
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (running) {
          await wal.commit(events('x'));
          commits++;
        }
      }),
    );
    expect(commits).toBeGreaterThan(0);
    await wal.close();
  });

  it.each([
    ['group', { errno: 'EIO' }],
    ['none', { errno: 'EIO' }],
    ['group', 'short'],
    ['none', 'short'],
  ] as const)('sync %s: a failed write from the loop (%o) poisons; its commits reject, nothing is reported written that was not', async (sync, fault) => {
    const dir = tempDir();
    const faulty = new FaultIo(io());
    const { wal } = await Wal.open({ dir, io: faulty, sync, segmentBytes: 64 * 1024 });
    const heard: WalError[] = [];
    wal.on('failure', (error) => heard.push(error));
    await wal.commit(events('written'));
    const durableBefore = wal.durableLsn;
    faulty.failNth('appendFrames', 1, fault);
    const failed = [wal.commit(events('lost 1')), wal.commit(events('lost 2'))];
    for (const commit of failed) await expect(commit).rejects.toMatchObject({ code: 'WAL_POISONED', cause: expect.any(WalError) });
    expect(faulty.fired).toBe(1);
    expect(wal.bgFailure).toEqual(expect.any(String));
    expect(wal.durableLsn).toBe(durableBefore);
    await expect(wal.commit(events('later'))).rejects.toMatchObject({ code: 'WAL_POISONED' });
    await expect(wal.close()).rejects.toMatchObject({ code: 'WAL_POISONED' });
    expect(heard.map((error) => error.code)).toEqual(['WAL_POISONED']);
    // What reached the file replays (docs/DURABILITY.md, "Poisoning"): after a failed write
    // nothing of the batch; after a short one, the frames it holds whole. Never anything else.
    const { wal: reopened, events: replayed } = await Wal.open({ dir, io: io() });
    const attempted = ['written', 'lost 1', 'lost 2'];
    if (fault === 'short') expect(texts(replayed)).toEqual(attempted.slice(0, Math.max(1, replayed.length)));
    else expect(texts(replayed)).toEqual(['written']);
    await reopened.close();
  });
});
