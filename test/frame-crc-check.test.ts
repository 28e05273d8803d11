import fs from 'node:fs';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { Wal, WalError, readTransactions, readWal, replayDir } from '../src/index.js';
import { referenceCrc32 } from '../src/format/crc.js';
import { readFrame } from '../src/format/frame.js';
import { createNativeIo } from '../src/io/native.js';
import { BACKENDS } from './helpers/backends.js';
import { events } from './helpers/bytes.js';
import { commitRecord, craftFrame, segmentPath } from './helpers/craft.js';
import { mulberry32, testSeed } from './helpers/random.js';
import { tempDir } from './helpers/temp-dir.js';

/*
 * Readers check the CRCs of a window of frames with one call of the native
 * backend's checkFrameCrcs, not one crc32 call per frame
 * (src/read/segment-source.ts). Such a check must stop exactly at the first
 * frame whose CRC does not hold, and a damaged frame amid frames checked so
 * must be found by every reader, as the js backend (a crc32 per frame)
 * finds it.
 */

const PAYLOAD_AT = 21;

/** The bytes of the leading frames a frame-by-frame walk with the reference CRC reads as records. */
function wholeFramesByWalk(bytes: Buffer): number {
  let at = 0;
  for (;;) {
    const result = readFrame(bytes, at, bytes.length, referenceCrc32);
    if (result.status !== 'record') return at;
    at += result.frame.length;
  }
}

describe('the native checkFrameCrcs', () => {
  it('counts exactly the leading frames whose CRCs hold: a damaged byte anywhere in a frame, a bad length or a cut frame stops it there', () => {
    const seed = testSeed('frame check', 'SEGWAL_FRAME_CHECK_SEED', () => Math.floor(Math.random() * 2 ** 32));
    const random = mulberry32(seed);
    const check = createNativeIo().checkFrameCrcs;
    expect(check).toBeTypeOf('function');
    const frames = Array.from({ length: 40 }, (_, i) =>
      craftFrame(commitRecord(i * 3 + 1, Array.from({ length: 1 + (i % 3) }, () => 'e'.repeat(Math.floor(random() * 700))))),
    );
    const starts = frames.map((_, i) => frames.slice(0, i).reduce((sum, frame) => sum + frame.length, 0));
    const whole = Buffer.concat([...frames, Buffer.alloc(64)]);
    const framesBytes = whole.length - 64;
    expect(check?.(whole)).toBe(framesBytes);
    expect(wholeFramesByWalk(whole)).toBe(framesBytes);
    expect(check?.(Buffer.alloc(0))).toBe(0);
    frames.forEach((frame, index) => {
      const start = starts[index] as number;
      // Any byte of the frame: its length, kind, LSNs, payload or CRC trailer.
      const damaged = Buffer.from(whole);
      const at = start + Math.floor(random() * frame.length);
      damaged[at] = (damaged[at] as number) ^ (1 << Math.floor(random() * 8));
      expect(check?.(damaged), `seed ${seed}, frame ${index}, byte ${at - start}`).toBe(start);
      expect(wholeFramesByWalk(damaged)).toBe(start);
      const shortLength = Buffer.from(whole);
      shortLength.writeUInt32LE(24, start);
      expect(check?.(shortLength)).toBe(start);
      expect(check?.(whole.subarray(0, start + frame.length - 1))).toBe(start);
    });
  });
});

/** A native log whose first (sealed) segment holds many small frames, one of them then damaged in the middle. */
async function logDamagedMidSegment(): Promise<{ dir: string; offset: number; lsn: number; frames: number }> {
  const dir = tempDir();
  const { wal } = await Wal.open({ dir, io: 'native', segmentBytes: 32 * 1024, sync: 'none' });
  for (let i = 0; i < 1500; i++) await wal.commit(events(`event ${i} ${'x'.repeat(i % 90)}`));
  await wal.close();
  const inFirst: { offset: number; lsn: number }[] = [];
  for await (const record of readWal(dir)) if (record.segmentId === 1) inFirst.push({ offset: record.offset, lsn: record.txBeginLsn }); // a one-shot commit's first LSN, which errors name
  expect(fs.readdirSync(dir).filter((name) => name.endsWith('.wal')).length).toBeGreaterThan(2);
  const { offset, lsn } = inFirst[Math.floor(inFirst.length / 2)] as { offset: number; lsn: number };
  const file = segmentPath(dir, 1);
  const bytes = fs.readFileSync(file);
  // A byte of the event itself (after the batch's count and the event's length): only the CRC tells.
  const at = offset + PAYLOAD_AT + 8 + 2;
  bytes[at] = (bytes[at] as number) ^ 0x10;
  fs.writeFileSync(file, bytes);
  return { dir, offset, lsn, frames: inFirst.length };
}

describe('a damaged frame amid frames whose CRCs were checked in one call', () => {
  it.each(BACKENDS)('is found by open, replayDir, readTransactions and readWal on the $name backend, at its offset and LSN', async ({ name, io }) => {
    const { dir, offset, lsn, frames } = await logDamagedMidSegment();
    const native = createNativeIo();
    const checks = vi.spyOn(native, 'checkFrameCrcs');
    onTestFinished(() => checks.mockRestore());
    const refusals: Array<() => Promise<unknown>> = [
      () => Wal.open({ dir, io: io() }),
      () => replayDir(dir, { io: io() }),
      async () => {
        for await (const tx of readTransactions(dir, { io: io(), fromLsn: 1 })) void tx;
      },
      async () => {
        for await (const record of readWal(dir, { io: io(), fromLsn: 1 })) void record;
      },
    ];
    for (const refusal of refusals) {
      const error = await refusal().then(
        () => null,
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(WalError);
      expect({ ...(error as WalError) }).toMatchObject({ code: 'WAL_MALFORMED', offset, lsn, file: segmentPath(dir, 1) });
      expect((error as WalError).message).toContain('WAL_CRC_MISMATCH');
    }
    if (name === 'native') {
      // The frames before the damage were checked a window at a time, not one call each.
      expect(checks).toHaveBeenCalled();
      expect(checks.mock.calls.length).toBeLessThan(frames);
    } else {
      expect(checks).not.toHaveBeenCalled();
    }
  });
});
