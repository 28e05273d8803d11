import { describe, expect, it } from 'vitest';
import { all, begin, call, finish, runAsync, runSync, type IoProgram } from '../src/io/program.js';
import type { WalIo } from '../src/io/types.js';

/*
 * The two io-program combinators readers use to overlap io: `begin`/`finish`
 * (a read ahead) and `all` (the marker walk's lanes). runAsync must overlap
 * them and runSync must make the same calls one after the other, with
 * failures thrown where the program asks for the outcome, never lost and
 * never unhandled.
 */

/** An io whose `fileSize(fd)` answers `fd`, fails for a negative fd, and logs when each call starts and ends. */
function loggingIo(log: string[]): WalIo {
  const answer = (fd: number) => {
    if (fd < 0) throw Object.assign(new Error(`EIO on ${fd}`), { code: 'EIO' });
    return fd;
  };
  return {
    name: 'logging',
    crc32: () => 0,
    sync: {
      fileSize: (fd: number) => {
        log.push(`start ${fd}`);
        try {
          return answer(fd);
        } finally {
          log.push(`end ${fd}`);
        }
      },
    },
    async: {
      fileSize: async (fd: number) => {
        log.push(`start ${fd}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
        log.push(`end ${fd}`);
        return answer(fd);
      },
    },
  } as unknown as WalIo;
}

function* readAheadProgram(log: string[], aheadFd: number): IoProgram<number[]> {
  const ahead = yield* begin('fileSize', aheadFd);
  log.push('begun');
  const now = yield* call('fileSize', 1);
  return [now, yield* finish(ahead)];
}

function* lane(log: string[], fd: number): IoProgram<number> {
  try {
    return yield* call('fileSize', fd);
  } finally {
    log.push(`lane ${fd} ended`);
  }
}

describe('io programs', () => {
  it('begin/finish: runAsync lets the begun call run while the program goes on; runSync makes it at once', async () => {
    const asyncLog: string[] = [];
    expect(await runAsync(loggingIo(asyncLog), readAheadProgram(asyncLog, 7))).toEqual([1, 7]);
    expect(asyncLog.slice(0, 3)).toEqual(['start 7', 'begun', 'start 1']);
    const syncLog: string[] = [];
    expect(runSync(loggingIo(syncLog), readAheadProgram(syncLog, 7))).toEqual([1, 7]);
    expect(syncLog).toEqual(['start 7', 'end 7', 'begun', 'start 1', 'end 1']);
  });

  it('a begun call that fails throws at finish, on both runners, and is never an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      await expect(runAsync(loggingIo([]), readAheadProgram([], -1))).rejects.toThrow('EIO on -1');
      expect(() => runSync(loggingIo([]), readAheadProgram([], -1))).toThrow('EIO on -1');
      await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });

  it('all: results in order; runAsync overlaps the programs, runSync runs them one after the other', async () => {
    const asyncLog: string[] = [];
    expect(await runAsync(loggingIo(asyncLog), all([lane(asyncLog, 3), lane(asyncLog, 4), lane(asyncLog, 5)]))).toEqual([3, 4, 5]);
    expect(asyncLog.slice(0, 3)).toEqual(['start 3', 'start 4', 'start 5']);
    const syncLog: string[] = [];
    expect(runSync(loggingIo(syncLog), all([lane(syncLog, 3), lane(syncLog, 4)]))).toEqual([3, 4]);
    expect(syncLog).toEqual(['start 3', 'end 3', 'lane 3 ended', 'start 4', 'end 4', 'lane 4 ended']);
  });

  it('all: the first failure is thrown once every program has ended', async () => {
    for (const run of ['async', 'sync'] as const) {
      const log: string[] = [];
      const program = all([lane(log, 3), lane(log, -2), lane(log, 6), lane(log, -9)]);
      const outcome = run === 'async' ? runAsync(loggingIo(log), program) : Promise.resolve().then(() => runSync(loggingIo(log), program));
      await expect(outcome, run).rejects.toThrow('EIO on -2');
      expect(log.filter((line) => line.endsWith('ended')).sort(), run).toEqual(['lane -2 ended', 'lane -9 ended', 'lane 3 ended', 'lane 6 ended']);
    }
  });
});
