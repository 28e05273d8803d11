import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Wal, replayDir } from '../src/index.js';
import { BACKENDS } from './helpers/backends.js';
import { events, texts } from './helpers/bytes.js';
import { runCli } from './helpers/cli.js';
import { segmentNames, tempDir } from './helpers/temp-dir.js';

const LOG_ID = /^[0-9a-f]{32}$/;

describe.each(BACKENDS)('the log identity on the $name backend', ({ io }) => {
  it('a new log gets a random 128-bit id, kept across rotation, truncation and reopening, readable without the lock', async () => {
    const dir = tempDir();
    const { wal, recovery } = await Wal.open({ dir, io: io(), segmentBytes: 1024 });
    expect(recovery.logId).toMatch(LOG_ID);
    expect(wal.logId).toBe(recovery.logId);
    expect(wal.status().logId).toBe(recovery.logId);
    for (let i = 0; i < 30; i++) await wal.commit([Buffer.alloc(100, i)]);
    await wal.checkpoint(() => undefined);
    expect(segmentNames(dir)[0]).not.toBe('0000000001.wal');
    // Read while the Wal holds the lock.
    expect((await replayDir(dir)).recovery.logId).toBe(recovery.logId);
    const inspect = await runCli('inspect', dir, '--json');
    expect(JSON.parse(inspect.stdout).logId).toBe(recovery.logId);
    expect((await runCli('inspect', dir)).stdout).toMatch(new RegExp(`^log id ${recovery.logId}\\n`));
    await wal.close();
    const { wal: reopened, recovery: again } = await Wal.open({ dir, io: io() });
    expect(again.logId).toBe(recovery.logId);
    expect(again.repairs).toEqual([]);
    await reopened.close();
    // Another log has another id.
    const other = await Wal.open({ dir: tempDir(), io: io() });
    expect(other.recovery.logId).not.toBe(recovery.logId);
    await other.wal.close();
  });

  it('a log written before ids existed gets one at its next open; readers see none until then', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, io: io() });
    await wal.commit(events('old'));
    await wal.close();
    fs.rmSync(`${dir}/.segwal.id`);
    expect((await replayDir(dir)).recovery.logId).toBeNull();
    const { wal: reopened, events: replayed, recovery } = await Wal.open({ dir, io: io() });
    expect(texts(replayed)).toEqual(['old']);
    expect(recovery.logId).toMatch(LOG_ID);
    expect(recovery.repairs).toEqual([]);
    await reopened.close();
    expect((await replayDir(dir)).recovery.logId).toBe(recovery.logId);
  });

  it('a crash while creating it leaves a log that opens: a temp file alone is replaced, an id without a segment is kept', async () => {
    const dir = tempDir();
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(`${dir}/.segwal.id.tmp`, '{"logId":"00');
    const first = await Wal.open({ dir, io: io() });
    expect(first.recovery.logId).toMatch(LOG_ID);
    expect(fs.existsSync(`${dir}/.segwal.id.tmp`)).toBe(false);
    await first.wal.close();

    const kept = tempDir();
    fs.mkdirSync(kept, { recursive: true });
    const id = 'ab'.repeat(16);
    fs.writeFileSync(`${kept}/.segwal.id`, `${JSON.stringify({ logId: id })}\n`);
    const { wal, recovery } = await Wal.open({ dir: kept, io: io() });
    expect(recovery.logId).toBe(id);
    expect(segmentNames(kept)).toEqual(['0000000001.wal']);
    await wal.close();
  });

  it('the logId option names the id of a new log and refuses a log with another one; a damaged id file is refused', async () => {
    const dir = tempDir();
    const id = '0123456789abcdef'.repeat(2);
    const { wal, recovery } = await Wal.open({ dir, io: io(), logId: id });
    expect(recovery.logId).toBe(id);
    await wal.close();
    await expect(Wal.open({ dir, io: io(), logId: 'f'.repeat(32) })).rejects.toMatchObject({
      code: 'WAL_INVALID_OPTIONS',
      message: expect.stringContaining(`is log ${id}, not ${'f'.repeat(32)}`),
    });
    await expect(Wal.open({ dir, io: io(), logId: 'XYZ' })).rejects.toMatchObject({ code: 'WAL_INVALID_OPTIONS', message: /logId/ });
    (await Wal.open({ dir, io: io(), logId: id })).wal.closeSync();

    fs.writeFileSync(`${dir}/.segwal.id`, 'not json');
    await expect(Wal.open({ dir, io: io() })).rejects.toMatchObject({ code: 'WAL_MALFORMED', message: /identity file/ });
    await expect(replayDir(dir)).rejects.toMatchObject({ code: 'WAL_MALFORMED' });
  });
});
