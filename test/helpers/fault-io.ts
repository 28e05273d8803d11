import { constants as osConstants } from 'node:os';
import type { AsyncIoOps, IoOps, WalIo } from '../../src/io/types.js';
import { SPARE_FILE_NAME } from '../../src/segment-files.js';

/*
 * A WalIo that wraps a real backend and can count calls, fail the Nth call of
 * an operation with an errno, make a write short, or slow an operation down.
 * It implements the same interface as the shipped backends: the Wal does not
 * know it is being tested.
 *
 * An fsync is either a `datasync` call or an `appendFrames` call asked to
 * sync; `fsyncs`, `fsyncCalls`, `delayFsync` and `failNthFsync` see both.
 */

export type IoOp = keyof IoOps;
/** `errno` throws like a failed syscall; `short` writes half of the data and reports that. */
export type Fault = { errno: keyof typeof osConstants.errno } | 'short';

interface PlannedFault {
  op: IoOp;
  /** Calls of `op` still to let through before failing. */
  skip: number;
  fault: Fault;
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/** An async call held at its start: `reached` resolves once it is made; it goes on after `release()`. */
export interface Hold {
  reached: Promise<void>;
  release(): void;
}

interface PlannedHold {
  target: IoOp | 'fsync';
  arrive(): void;
  released: Promise<void>;
}

export class FaultIo implements WalIo {
  readonly name = 'fault';
  readonly sync: IoOps;
  readonly async: AsyncIoOps;
  readonly crc32: WalIo['crc32'];
  readonly counts = new Map<IoOp, number>();
  /** The `zeroFill` flag of every `allocate` call, in order. */
  readonly zeroFills: boolean[] = [];
  private readonly planned: PlannedFault[] = [];
  private readonly delays = new Map<IoOp, number>();
  private fsyncCount = 0;
  private fsyncCallCount = 0;
  /** The current path of each open fd, following renames (the spare segment becomes a segment). */
  private readonly paths = new Map<number, string>();
  private fsyncDelayMs = 0;
  private firedCount = 0;
  private readonly plannedFsyncFailures: Array<{ skip: number; errno: keyof typeof osConstants.errno }> = [];
  private readonly holds: PlannedHold[] = [];

  constructor(readonly inner: WalIo) {
    this.crc32 = inner.crc32;
    const ops = Object.keys(inner.sync) as IoOp[];
    this.sync = Object.fromEntries(ops.map((op) => [op, (...args: unknown[]) => this.callSync(op, args)])) as unknown as IoOps;
    this.async = Object.fromEntries(ops.map((op) => [op, (...args: unknown[]) => this.callAsync(op, args)])) as unknown as AsyncIoOps;
  }

  count(op: IoOp): number {
    return this.counts.get(op) ?? 0;
  }

  /** fsyncs of log segments so far, whichever call carried them (the spare's preparation is not counted). */
  get fsyncs(): number {
    return this.fsyncCount;
  }

  /** Every fsync call so far, the spare's included: what `failNthFsync` counts. */
  get fsyncCalls(): number {
    return this.fsyncCallCount;
  }

  /** Planned faults (`failNth`, `failNthFsync`) that have fired so far. */
  get fired(): number {
    return this.firedCount;
  }

  /** Makes every later fsync take at least `ms` (blocking in the sync form). */
  delayFsync(ms: number): this {
    this.fsyncDelayMs = ms;
    return this;
  }

  /** Fails the `nth` fsync from now on; an `appendFrames` carrying it still writes its bytes first. */
  failNthFsync(nth: number, errno: keyof typeof osConstants.errno): this {
    this.plannedFsyncFailures.push({ skip: nth - 1, errno });
    return this;
  }

  /** Fails the `nth` call of `op` from now on (1 = the next one). */
  failNth(op: IoOp, nth: number, fault: Fault): this {
    this.planned.push({ op, skip: nth - 1, fault });
    return this;
  }

  /**
   * Holds the next async call of `op`, or with 'fsync' the next fsync of a log
   * segment (the spare's preparation is not counted, as for `fsyncs`), until
   * `release()`: a test can then look at the Wal while that call is in flight,
   * for as long as it needs, instead of sleeping. A held sync call throws.
   */
  hold(target: IoOp | 'fsync'): Hold {
    let arrive!: () => void;
    let release!: () => void;
    const reached = new Promise<void>((resolve) => (arrive = resolve));
    const released = new Promise<void>((resolve) => (release = resolve));
    this.holds.push({ target, arrive, released });
    return { reached, release };
  }

  /** Makes every later call of `op` take at least `ms` (blocking in the sync form, as a real slow disk would). */
  delay(op: IoOp, ms: number): this {
    this.delays.set(op, ms);
    return this;
  }

  private callSync(op: IoOp, args: unknown[]): unknown {
    if (this.takeHold(op, args) !== null) throw new Error(`FaultIo.hold applies to async calls, and ${op} was called in its blocking form`);
    const fault = this.next(op);
    const fsyncFailure = this.nextFsync(op, args);
    const ms = this.delayOf(op, args);
    if (ms > 0) Atomics.wait(sleepCell, 0, 0, ms);
    if (fault === 'short') return this.shortWriteSync(op, args);
    if (fault !== null) throw syscallError(op, fault.errno);
    if (fsyncFailure !== null) {
      if (op === 'appendFrames') this.inner.sync.appendFrames(...(withoutSync(args) as Parameters<IoOps['appendFrames']>));
      throw syscallError('fdatasync', fsyncFailure);
    }
    return this.track(op, args, (this.inner.sync[op] as (...a: unknown[]) => unknown)(...args));
  }

  private async callAsync(op: IoOp, args: unknown[]): Promise<unknown> {
    const hold = this.takeHold(op, args);
    if (hold !== null) {
      hold.arrive();
      await hold.released;
    }
    const fault = this.next(op);
    const fsyncFailure = this.nextFsync(op, args);
    const ms = this.delayOf(op, args);
    if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms)); // the slow disk being simulated
    if (fault === 'short') return this.shortWriteAsync(op, args);
    if (fault !== null) throw syscallError(op, fault.errno);
    if (fsyncFailure !== null) {
      if (op === 'appendFrames') await this.inner.async.appendFrames(...(withoutSync(args) as Parameters<IoOps['appendFrames']>));
      throw syscallError('fdatasync', fsyncFailure);
    }
    return this.track(op, args, await (this.inner.async[op] as (...a: unknown[]) => Promise<unknown>)(...args));
  }

  private track(op: IoOp, args: unknown[], result: unknown): unknown {
    if (op === 'openSegment') this.paths.set(result as number, args[0] as string);
    if (op === 'close') this.paths.delete(args[0] as number);
    if (op === 'allocate') this.zeroFills.push(args[2] as boolean);
    if (op === 'rename') {
      for (const [fd, path] of this.paths) if (path === args[0]) this.paths.set(fd, args[1] as string);
    }
    return result;
  }

  private takeHold(op: IoOp, args: unknown[]): PlannedHold | null {
    const fsyncOfSegment = isFsync(op, args) && !this.paths.get(args[0] as number)?.endsWith(SPARE_FILE_NAME);
    const index = this.holds.findIndex((hold) => hold.target === op || (hold.target === 'fsync' && fsyncOfSegment));
    return index < 0 ? null : (this.holds.splice(index, 1)[0] as PlannedHold);
  }

  private delayOf(op: IoOp, args: unknown[]): number {
    return (this.delays.get(op) ?? 0) + (isFsync(op, args) ? this.fsyncDelayMs : 0);
  }

  private nextFsync(op: IoOp, args: unknown[]): keyof typeof osConstants.errno | null {
    if (!isFsync(op, args)) return null;
    this.fsyncCallCount++;
    if (!this.paths.get(args[0] as number)?.endsWith(SPARE_FILE_NAME)) this.fsyncCount++;
    const planned = this.plannedFsyncFailures[0];
    if (planned === undefined) return null;
    if (planned.skip > 0) {
      planned.skip--;
      return null;
    }
    this.plannedFsyncFailures.shift();
    this.firedCount++;
    return planned.errno;
  }

  private next(op: IoOp): Fault | null {
    this.counts.set(op, this.count(op) + 1);
    const index = this.planned.findIndex((planned) => planned.op === op);
    if (index < 0) return null;
    const planned = this.planned[index]!;
    if (planned.skip > 0) {
      planned.skip--;
      return null;
    }
    this.planned.splice(index, 1);
    if (planned.fault === 'short' && op !== 'write' && op !== 'appendFrames') {
      throw new Error(`a short fault only applies to write and appendFrames, not ${op}`);
    }
    this.firedCount++;
    return planned.fault;
  }

  /** Writes the first half of the data (sealing what frames fit, never syncing) and reports that. */
  private shortWriteSync(op: IoOp, args: unknown[]): number {
    const [fd, data, position] = args as [number, Uint8Array, number];
    const half = data.subarray(0, data.length >> 1);
    return op === 'write' ? this.inner.sync.write(fd, half, position) : this.inner.sync.appendFrames(fd, half, position, false);
  }

  private shortWriteAsync(op: IoOp, args: unknown[]): Promise<number> {
    const [fd, data, position] = args as [number, Uint8Array, number];
    const half = data.subarray(0, data.length >> 1);
    return op === 'write' ? this.inner.async.write(fd, half, position) : this.inner.async.appendFrames(fd, half, position, false);
  }
}

function isFsync(op: IoOp, args: unknown[]): boolean {
  return op === 'datasync' || (op === 'appendFrames' && args[3] === true);
}

function withoutSync(args: unknown[]): unknown[] {
  return [args[0], args[1], args[2], false];
}

function syscallError(op: string, code: keyof typeof osConstants.errno): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${code}: injected failure of ${op}`);
  error.code = code;
  error.errno = osConstants.errno[code];
  error.syscall = op;
  return error;
}
