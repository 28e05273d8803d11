import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Wal } from '../src/index.js';
import type { SyncMode } from '../src/types.js';
import { BACKENDS } from './helpers/backends.js';
import { FaultIo } from './helpers/fault-io.js';
import { tempDir } from './helpers/temp-dir.js';

const SEGMENT_BYTES = 4096;
const MODES: SyncMode[] = ['per-commit', 'group', 'none'];

/**
 * Commits enough to rotate a few times (each rotation adopts a prepared spare), closes, reopens (the last
 * segment is preallocated again); returns the replayed events (hex) and the size of the active segment.
 */
async function rotateAndReopen(dir: string, io: FaultIo, sync: SyncMode, preallocate: boolean): Promise<{ replayed: string[]; activeBytes: number }> {
  const options = { dir, io, sync, segmentBytes: SEGMENT_BYTES, preallocate };
  const { wal } = await Wal.open(options);
  for (let i = 0; i < 60; i++) await wal.commit([Buffer.alloc(200, i)]);
  await wal.close();
  const { wal: reopened, events } = await Wal.open(options);
  const activeFile = path.join(dir, fs.readdirSync(dir).filter((name) => name.endsWith('.wal')).sort().at(-1)!);
  const activeBytes = fs.statSync(activeFile).size;
  await reopened.close();
  return { replayed: events.map((event) => event.toString('hex')), activeBytes };
}

describe.each(BACKENDS)('segment preallocation on the $name backend', ({ io }) => {
  it.each(MODES)('sync %s: segments are zero-filled where fsyncs are frequent and only reserved in sync none', async (mode) => {
    const counted = new FaultIo(io());
    const { replayed, activeBytes } = await rotateAndReopen(tempDir(), counted, mode, true);
    expect(replayed).toEqual(Array.from({ length: 60 }, (_, i) => Buffer.alloc(200, i).toString('hex')));
    expect(activeBytes).toBeGreaterThanOrEqual(SEGMENT_BYTES);
    expect(counted.zeroFills.length).toBeGreaterThan(3);
    expect(new Set(counted.zeroFills)).toEqual(new Set([mode !== 'none']));
  });

  it('preallocate false: no segment is preallocated in any mode', async () => {
    for (const mode of MODES) {
      const counted = new FaultIo(io());
      const { replayed } = await rotateAndReopen(tempDir(), counted, mode, false);
      expect(replayed).toHaveLength(60);
      expect(counted.count('allocate')).toBe(0);
    }
  });

  it('a spare whose preallocation fails poisons the log with that failure, not with the failed close of the spare after it', async () => {
    const faulty = new FaultIo(io());
    const { wal } = await Wal.open({ dir: tempDir(), io: faulty, segmentBytes: SEGMENT_BYTES, sync: 'per-commit' });
    const heard = new Promise<Error>((resolve) => wal.on('failure', resolve));
    faulty.failNth('allocate', 1, { errno: 'ENOSPC' }).failNth('close', 1, { errno: 'EBADF' });
    await wal.commit([Buffer.alloc(SEGMENT_BYTES / 2, 1)]); // half the segment: the spare is prepared now
    const failure = await heard;
    expect(failure).toMatchObject({ code: 'WAL_POISONED', message: expect.stringMatching(/ENOSPC/) });
    expect(failure.message).not.toMatch(/EBADF/);
    expect(faulty.count('close')).toBeGreaterThan(0);
    await expect(wal.close()).rejects.toMatchObject({ code: 'WAL_POISONED' });
  });
});
