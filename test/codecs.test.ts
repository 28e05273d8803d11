import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { Wal, codecs, replayDir, type WalOptions } from '../src/index.js';
import { snapshotFiles, tempDir } from './helpers/temp-dir.js';

describe('codecs', () => {
  it('bytes is the default: Uint8Array in, Buffer out, byte for byte', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js' });
    await wal.commit([new Uint8Array([1, 2, 3]), Buffer.from([0, 0, 255])]);
    await expect(wal.commit(['a string' as unknown as Uint8Array])).rejects.toMatchObject({ code: 'WAL_INVALID_EVENT' });
    await wal.close();
    const { wal: reopened, events } = await Wal.open({ dir, io: 'js' });
    expect(events).toEqual([Buffer.from([1, 2, 3]), Buffer.from([0, 0, 255])]);
    expect(Buffer.isBuffer(events[0])).toBe(true);
    await reopened.close();
  });

  it('utf8 round-trips strings, including non-ASCII', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', codec: codecs.utf8 });
    await wal.commit(['héllo', '日本語', '']);
    await expect(wal.commit([42 as unknown as string])).rejects.toMatchObject({ code: 'WAL_INVALID_EVENT' });
    await wal.close();
    const { wal: reopened, events } = await Wal.open({ dir, io: 'js', codec: 'utf8' });
    expect(events).toEqual(['héllo', '日本語', '']);
    await reopened.close();
  });

  it('json round-trips values; a value JSON cannot hold throws WAL_INVALID_EVENT before anything is written', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', codec: codecs.json() });
    await wal.commit([{ a: 1 }, [1, 'two'], null]);
    await wal.sync();
    const before = snapshotFiles(dir);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(wal.commit([{ ok: true }, cyclic])).rejects.toMatchObject({ code: 'WAL_INVALID_EVENT', message: /event 1/ });
    await expect(wal.commit([undefined])).rejects.toMatchObject({ code: 'WAL_INVALID_EVENT' });
    await wal.sync();
    expect(snapshotFiles(dir)).toEqual(before);
    await wal.close();
    const { wal: reopened, events } = await Wal.open({ dir, io: 'js', codec: 'json' });
    expect(events).toEqual([{ a: 1 }, [1, 'two'], null]);
    await reopened.close();
  });

  it('json with a zod schema: an invalid event throws WAL_INVALID_EVENT on write; one failing on replay throws WAL_DECODE naming its LSN', async () => {
    const dir = tempDir();
    const loose = codecs.json(z.object({ id: z.number() }));
    const { wal } = await Wal.open({ dir, io: 'js', codec: loose });
    await wal.commit([{ id: 1 }]);
    await wal.sync();
    const before = snapshotFiles(dir);
    await expect(wal.commit([{ id: 'one' } as unknown as { id: number }])).rejects.toMatchObject({
      code: 'WAL_INVALID_EVENT',
      message: /schema/,
    });
    await wal.sync();
    expect(snapshotFiles(dir)).toEqual(before);
    const { beginLsn } = (await wal.commit([{ id: 2 }, { id: -3 }]))!;
    await wal.close();

    const strict = codecs.json(z.object({ id: z.number().positive() }));
    const error = await Wal.open({ dir, io: 'js', codec: strict }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'WAL_DECODE', lsn: beginLsn + 1 });
    expect((error as Error).message).toContain(`LSN ${beginLsn + 1}`);
    // The refusal left the log as it was: the looser schema still reads it all.
    const { wal: reopened, events } = await Wal.open({ dir, io: 'js', codec: loose });
    expect(events).toEqual([{ id: 1 }, { id: 2 }, { id: -3 }]);
    await reopened.close();
  });

  it("a schema failure is one line naming the field, not zod's JSON, and does not show the event's contents", async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', codec: codecs.json(z.object({ id: z.number(), tags: z.array(z.string()) })) });
    await expect(wal.commit([{ id: 'secret', tags: [] } as unknown as { id: number; tags: string[] }])).rejects.toThrow(
      'event 0: event fails the schema: field `id`: expected a number',
    );
    await wal.commit([{ id: -1, tags: ['a'] }]);
    await wal.close();
    const strict = codecs.json(z.object({ id: z.number().positive(), tags: z.array(z.string()) }));
    const error = await Wal.open({ dir, io: 'js', codec: strict }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'WAL_DECODE', message: 'event at LSN 2 does not decode: fails the schema: field `id`: expected a number > 0' });
  });

  // These tests are checked by `npm run typecheck` as much as by vitest: a wrong type fails tsc.
  it('a codec given by name types the events as its codec object does, in open, openSync, onReplay and replayDir', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: 'js', codec: 'utf8' });
    expectTypeOf(wal).toEqualTypeOf<Wal<string, string>>();
    await wal.commit(['hello']);
    // @ts-expect-error the utf8 codec takes strings
    await expect(wal.commit([Buffer.from('bytes')])).rejects.toMatchObject({ code: 'WAL_INVALID_EVENT' });
    await wal.close();

    const seen: string[] = [];
    const reopened = Wal.openSync({ dir, io: 'js', codec: 'utf8', onReplay: (events) => void seen.push(...events.map((event) => event.toUpperCase())) });
    expectTypeOf(reopened.events).toEqualTypeOf<string[]>();
    expect(seen).toEqual(['HELLO']);
    reopened.wal.closeSync();

    const replayed = await replayDir(dir, { codec: 'utf8' });
    expectTypeOf(replayed.events).toEqualTypeOf<string[]>();
    expect(replayed.events).toEqual(['hello']);
    const raw = await replayDir(dir);
    expectTypeOf(raw.events).toEqualTypeOf<Buffer[]>();
    expect(raw.events).toEqual([Buffer.from('hello')]);
  });

  it("'json' types events as unknown, 'bytes' (the default) as Uint8Array in and Buffer out, and a Codec object as its own types", async () => {
    const dir = tempDir();
    const { wal: jsonWal, events: jsonEvents } = await Wal.open({ dir, io: 'js', codec: 'json' });
    expectTypeOf(jsonWal).toEqualTypeOf<Wal<unknown, unknown>>();
    expectTypeOf(jsonEvents).toEqualTypeOf<unknown[]>();
    await jsonWal.close();
    const { wal: bytesWal } = await Wal.open({ dir: tempDir(), io: 'js' });
    expectTypeOf(bytesWal).toEqualTypeOf<Wal<Uint8Array, Buffer>>();
    await bytesWal.close();
    const schema = z.object({ id: z.number() });
    const { wal: typed } = await Wal.open({ dir: tempDir(), io: 'js', codec: codecs.json(schema) });
    expectTypeOf(typed).toEqualTypeOf<Wal<{ id: number }, { id: number }>>();
    await typed.close();

    // Options typed ahead of the call keep their event types; a name that contradicts them does not compile.
    const utf8Options: WalOptions<string, string> = { dir: tempDir(), io: 'js', codec: 'utf8' };
    const { wal: fromOptions } = await Wal.open(utf8Options);
    expectTypeOf(fromOptions).toEqualTypeOf<Wal<string, string>>();
    await fromOptions.close();
    // @ts-expect-error WalOptions without type arguments is a log of bytes
    const contradicting: WalOptions = { dir, codec: 'utf8' };
    expect(contradicting.codec).toBe('utf8');
  });
});
