import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { Tx, Wal, WalError, codecs, readWal, type WalOptions } from '../src/index.js';
import { MAX_BATCHED_EVENT_BYTES } from '../src/format/constants.js';
import { BACKENDS } from './helpers/backends.js';
import { events } from './helpers/bytes.js';
import { FaultIo } from './helpers/fault-io.js';
import { snapshotFiles, tempDir } from './helpers/temp-dir.js';

/** A log with one committed event, to prove a refused call leaves it as it was. */
async function existingLog(dir: string): Promise<Map<string, string>> {
  const { wal } = await Wal.open({ dir, io: 'js' });
  await wal.commit(events('kept'));
  await wal.close();
  return snapshotFiles(dir);
}

const BAD_OPTIONS: Array<[string, Record<string, unknown>, RegExp]> = [
  ['a missing dir', { dir: undefined }, /`dir`/],
  ['an empty dir', { dir: '' }, /`dir`: expected a non-empty path/],
  ['an unknown sync mode', { sync: 'sometimes' }, /`sync`/],
  ['a negative group interval', { sync: { mode: 'group', intervalMs: -1 } }, /`sync/],
  ['a group interval on another mode', { sync: { mode: 'none', intervalMs: 5 } }, /`sync/],
  ['a segmentBytes below the minimum', { segmentBytes: 100 }, /`segmentBytes`/],
  ['a fractional segmentBytes', { segmentBytes: 4096.5 }, /`segmentBytes`/],
  ['a segmentBytes above the maximum', { segmentBytes: 2 ** 40 }, /`segmentBytes`/],
  ['a negative checkpointLsn', { checkpointLsn: -1 }, /`checkpointLsn`/],
  ['a checkpointLsn past 2^53-1', { checkpointLsn: 2 ** 53 }, /`checkpointLsn`/],
  ['an unknown io backend', { io: 'rust' }, /`io`/],
  ['an io object missing its operations', { io: { name: 'x' } }, /`io`/],
  ['an unknown codec name', { codec: 'xml' }, /`codec`/],
  ['a codec without decode', { codec: { name: 'half', encode: () => new Uint8Array() } }, /`codec`/],
  ['a non-boolean preallocate', { preallocate: 'yes' }, /`preallocate`/],
  ['an onReplay that is not a function', { onReplay: 5 }, /`onReplay`/],
  ['an unknown option', { syncMode: 'group' }, /unknown option\(s\) `syncMode`/],
];

describe('bad options', () => {
  it.each(BAD_OPTIONS)('%s gives WAL_INVALID_OPTIONS naming the option, and the log is unchanged', async (_label, bad, message) => {
    const dir = tempDir();
    const before = await existingLog(dir);
    const options = { dir, io: 'js', ...bad } as unknown as WalOptions;
    for (const attempt of [() => Wal.open(options), async () => Wal.openSync(options)]) {
      const error = await attempt().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(WalError);
      expect(error).toMatchObject({ code: 'WAL_INVALID_OPTIONS', message });
    }
    expect(snapshotFiles(dir)).toEqual(before);
  });

  it('options that are not an object at all are refused', async () => {
    await expect(Wal.open(null as unknown as WalOptions)).rejects.toMatchObject({ code: 'WAL_INVALID_OPTIONS' });
  });
});

// The whole message, so its wording is reviewed here: what was expected, what was given, where.
const OPTION_MESSAGES: Array<[string, Record<string, unknown>, string]> = [
  [
    'a value outside a union lists the allowed values',
    { sync: 'percommit' },
    "option `sync`: expected 'per-commit' | 'group' | 'none' | { mode: 'group', intervalMs }, got the string 'percommit'",
  ],
  [
    'codecs.json given uncalled says to call it',
    { codec: codecs.json },
    'option `codec`: expected a Codec, got the function codecs.json: call it, as codecs.json() or codecs.json(schema)',
  ],
  ['a nested bad value names its path', { sync: { mode: 'group', intervalMs: -1 } }, 'option `sync.intervalMs`: expected a number > 0, got -1'],
  ['a string where a number belongs shows the string', { segmentBytes: '5' }, "option `segmentBytes`: expected a number, got the string '5'"],
  ['a number out of range gives the bound', { segmentBytes: 100 }, 'option `segmentBytes`: expected a number >= 1024, got 100'],
  ['an integer past 2^53-1 is one problem, not one per failed check', { checkpointLsn: 2 ** 53 }, 'option `checkpointLsn`: expected an integer <= 9007199254740991, got 9007199254740992'],
  ['a union without words of its own lists its members', { io: 'rust' }, "option `io`: expected 'native' | 'js' | a WalIo object, got the string 'rust'"],
  ['an unknown key inside an option names the option', { sync: { mode: 'group', every: 5 } }, 'option `sync`: unknown key(s) `every`'],
  ['several problems are one line', { preallocate: 'yes', segmentBytes: 4096.5 }, "option `segmentBytes`: expected an integer, got 4096.5; option `preallocate`: expected a boolean, got the string 'yes'"],
];

describe('bad option messages', () => {
  it.each(OPTION_MESSAGES)('%s', (_label, bad, expected) => {
    const options = { dir: tempDir(), io: 'js', ...bad } as unknown as WalOptions;
    expect(() => Wal.openSync(options)).toThrow(new WalError('WAL_INVALID_OPTIONS', `invalid options: ${expected}`));
  });

  it('options that are not an object say what they are', () => {
    expect(() => Wal.openSync(null as unknown as WalOptions)).toThrow('invalid options: expected an object, got null');
  });

  it('readWal words its options the same way', async () => {
    const read = readWal(tempDir(), { fromLsn: 0 });
    await expect(read.next()).rejects.toThrow('invalid readWal() options: option `fromLsn`: expected a number >= 1, got 0');
  });

  it.each(BACKENDS)('a dir that is a regular file is refused as "not a directory" on the $name backend, and the file is left alone', async ({ io }) => {
    const file = path.join(tempDir(), 'not-a-dir');
    fs.writeFileSync(file, 'precious');
    for (const [dir, which] of [
      [file, 'it is a file'],
      [path.join(file, 'wal'), 'a path above it is a file'],
    ] as const) {
      const error = await Wal.open({ dir, io: io() }).catch((caught: unknown) => caught);
      expect(error).toMatchObject({ code: 'WAL_INVALID_OPTIONS', file: dir, message: `invalid options: option \`dir\`: ${dir} is not a directory (${which})` });
    }
    expect(fs.readFileSync(file, 'utf8')).toBe('precious');
  });
});

/** A Wal with transactions in every state, all written before the baseline is taken. */
interface Fixture {
  wal: Wal;
  openTx: Tx;
  committedTx: Tx;
  abortedTx: Tx;
}

const BAD_CALLS: Array<[string, (fixture: Fixture) => unknown, string, RegExp]> = [
  ['commit() with a non-array', ({ wal }) => wal.commit('event' as unknown as Uint8Array[]), 'WAL_INVALID_EVENT', /array of events/],
  ['commit() with a string under the bytes codec', ({ wal }) => wal.commit(['text' as unknown as Uint8Array]), 'WAL_INVALID_EVENT', /event 0.*Uint8Array/],
  ['commit() with one bad event among good ones', ({ wal }) => wal.commit([Buffer.from('ok'), 7 as unknown as Uint8Array]), 'WAL_INVALID_EVENT', /event 1/],
  ['commitSync() with a null event', ({ wal }) => wal.commitSync([null as unknown as Uint8Array]), 'WAL_INVALID_EVENT', /null/],
  ['commit() with an event over the size limit', ({ wal }) => wal.commit([Buffer.allocUnsafe(MAX_BATCHED_EVENT_BYTES + 1)]), 'WAL_INVALID_EVENT', /over the limit/],
  ['tx.append() with a bad event', ({ openTx }) => openTx.append({} as unknown as Uint8Array), 'WAL_INVALID_EVENT', /Uint8Array/],
  ['tx.appendBatch() with no events', ({ openTx }) => openTx.appendBatch([]), 'WAL_INVALID_EVENT', /at least one event/],
  ['append on a committed Tx', ({ committedTx }) => committedTx.append(Buffer.from('late')), 'WAL_CLOSED', /already committed/],
  ['commit on an aborted Tx', ({ abortedTx }) => abortedTx.commit(), 'WAL_CLOSED', /already aborted/],
  ['commit twice on one Tx', ({ committedTx }) => committedTx.commit(), 'WAL_CLOSED', /already committed/],
  ['commit() with null options', ({ wal }) => wal.commit(events('x'), null as unknown as object), 'WAL_INVALID_OPTIONS', /invalid commit\(\) options/],
  ['commit() with a misspelt option', ({ wal }) => wal.commit(events('x'), { durabel: true } as unknown as object), 'WAL_INVALID_OPTIONS', /durabel/],
  ['commit() with a non-boolean durable', ({ wal }) => wal.commit(events('x'), { durable: 'yes' } as unknown as object), 'WAL_INVALID_OPTIONS', /durable/],
  ['commitSync() with options that are not an object', ({ wal }) => wal.commitSync(events('x'), 5 as unknown as object), 'WAL_INVALID_OPTIONS', /invalid commitSync\(\) options/],
  ['tx.commit() with a misspelt option', ({ openTx }) => openTx.commit({ durabel: true } as unknown as object), 'WAL_INVALID_OPTIONS', /invalid tx.commit\(\) options.*durabel/],
  ['tx.commitSync() with null options', ({ openTx }) => openTx.commitSync(null as unknown as object), 'WAL_INVALID_OPTIONS', /invalid tx.commitSync\(\) options/],
  ['truncateUpTo() with a negative fence', ({ wal }) => wal.truncateUpTo(-1), 'WAL_INVALID_OPTIONS', /`fenceLsn`/],
  ['truncateUpToSync() with a fractional fence', ({ wal }) => wal.truncateUpToSync(1.5), 'WAL_INVALID_OPTIONS', /`fenceLsn`/],
  ['checkpointMarker() past itself', ({ wal }) => wal.checkpointMarker(wal.nextLsn + 5), 'WAL_INVALID_OPTIONS', /past the Checkpoint record/],
  ['checkpointMarker() with a non-number', ({ wal }) => wal.checkpointMarker('3' as unknown as number), 'WAL_INVALID_OPTIONS', /`snapshotLsn`/],
  ['checkpoint() without a function', ({ wal }) => wal.checkpoint(undefined as unknown as () => void), 'WAL_INVALID_OPTIONS', /`writeSnapshot`/],
];

describe.each(BACKENDS)('bad calls on the $name backend', ({ io }) => {
  it.each(BAD_CALLS)('%s throws %s before anything is written', async (_label, call, code, message) => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io(), sync: 'per-commit' });
    await wal.commit(events('kept'));
    const fixture: Fixture = { wal, openTx: wal.begin(), committedTx: wal.begin(), abortedTx: wal.begin() };
    fixture.committedTx.commit();
    fixture.abortedTx.abort();
    await wal.sync();
    const baseline = snapshotFiles(dir);
    const nextLsn = wal.nextLsn;
    let error: unknown;
    try {
      await call(fixture);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(WalError);
    expect(error).toMatchObject({ code, message });
    expect(wal.nextLsn).toBe(nextLsn);
    await wal.sync();
    expect(snapshotFiles(dir)).toEqual(baseline);
    await wal.close();
    const { wal: reopened, events: replayed } = await Wal.open({ dir, io: io() });
    expect(replayed).toEqual([Buffer.from('kept')]);
    await reopened.close();
  });

  it('a blocking call while an async write is in flight throws WAL_BUSY and writes nothing of its own', async () => {
    const dir = tempDir();
    const held = new FaultIo(io());
    const { wal } = await Wal.open({ dir, io: held, sync: 'per-commit' });
    const write = held.hold('appendFrames');
    const inFlight = wal.commit(events('in flight'));
    await write.reached; // the async write is in flight, held there
    expect(() => wal.commitSync(events('blocked'))).toThrow(expect.objectContaining({ code: 'WAL_BUSY' }));
    expect(() => wal.commitSync(events('blocked'))).toThrow(/in flight; await the pending commit/);
    expect(() => wal.syncSync()).toThrow(expect.objectContaining({ code: 'WAL_BUSY' }));
    expect(() => wal.closeSync()).toThrow(expect.objectContaining({ code: 'WAL_BUSY' }));
    write.release();
    await inFlight;
    await wal.close();
    const { wal: reopened, events: replayed } = await Wal.open({ dir, io: io() });
    expect(replayed).toEqual([Buffer.from('in flight')]);
    await reopened.close();
  });

  it('every call on a closed Wal throws WAL_CLOSED', async () => {
    const { wal } = await Wal.open({ dir: tempDir(), io: io() });
    const tx = wal.begin();
    await wal.close();
    await wal.close();
    const calls: Array<() => unknown> = [
      () => wal.commit(events('x')),
      () => wal.commitSync(events('x')),
      () => wal.begin(),
      () => tx.append(Buffer.from('x')),
      () => tx.commit(),
      () => wal.flush(),
      () => wal.flushSync(),
      () => wal.sync(),
      () => wal.syncSync(),
      () => wal.checkpointMarker(0),
      () => wal.truncateUpTo(0),
      () => wal.truncateUpToSync(0),
    ];
    for (const call of calls) {
      const error = await (async () => call())().then(
        () => null,
        (caught: unknown) => caught,
      );
      expect(error, call.toString()).toMatchObject({ code: 'WAL_CLOSED' });
    }
    expect(wal.status().closed).toBe(true);
  });

  it('a codec that throws a plain error or returns a non-Uint8Array gives WAL_ENCODE', async () => {
    const broken = { name: 'broken', encode: () => { throw new TypeError('boom'); }, decode: (bytes: Buffer) => bytes };
    const wrong = { name: 'wrong', encode: () => 'text' as unknown as Uint8Array, decode: (bytes: Buffer) => bytes };
    for (const codec of [broken, wrong]) {
      const { wal } = await Wal.open({ dir: tempDir(), io: io(), codec });
      await expect(wal.commit([Buffer.from('x')])).rejects.toMatchObject({ code: 'WAL_ENCODE' });
      expect(wal.nextLsn).toBe(1);
      await wal.close();
    }
  });
});
