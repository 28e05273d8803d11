import { constants as osConstants } from 'node:os';
import type { AsyncIoOps, IoOps, WalIo } from '../../src/io/types.js';

/*
 * A WalIo that wraps a real backend and can count calls, fail the Nth call of
 * an operation with an errno, make a write short, or slow an operation down.
 * It implements the same interface as the shipped backends: the Wal does not
 * know it is being tested.
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

export class FaultIo implements WalIo {
  readonly name = 'fault';
  readonly sync: IoOps;
  readonly async: AsyncIoOps;
  readonly crc32: WalIo['crc32'];
  readonly counts = new Map<IoOp, number>();
  private readonly planned: PlannedFault[] = [];
  private readonly delays = new Map<IoOp, number>();

  constructor(readonly inner: WalIo) {
    this.crc32 = inner.crc32;
    const ops = Object.keys(inner.sync) as IoOp[];
    this.sync = Object.fromEntries(ops.map((op) => [op, (...args: unknown[]) => this.callSync(op, args)])) as unknown as IoOps;
    this.async = Object.fromEntries(ops.map((op) => [op, (...args: unknown[]) => this.callAsync(op, args)])) as unknown as AsyncIoOps;
  }

  count(op: IoOp): number {
    return this.counts.get(op) ?? 0;
  }

  /** Fails the `nth` call of `op` from now on (1 = the next one). */
  failNth(op: IoOp, nth: number, fault: Fault): this {
    this.planned.push({ op, skip: nth - 1, fault });
    return this;
  }

  /** Makes every later call of `op` take at least `ms` (blocking in the sync form, as a real slow disk would). */
  delay(op: IoOp, ms: number): this {
    this.delays.set(op, ms);
    return this;
  }

  private callSync(op: IoOp, args: unknown[]): unknown {
    const fault = this.next(op);
    const ms = this.delays.get(op);
    if (ms !== undefined) Atomics.wait(sleepCell, 0, 0, ms);
    if (fault === 'short') return this.shortWriteSync(args);
    if (fault !== null) throw syscallError(op, fault.errno);
    return (this.inner.sync[op] as (...a: unknown[]) => unknown)(...args);
  }

  private async callAsync(op: IoOp, args: unknown[]): Promise<unknown> {
    const fault = this.next(op);
    const ms = this.delays.get(op);
    if (ms !== undefined) await new Promise((resolve) => setTimeout(resolve, ms));
    if (fault === 'short') return this.shortWriteAsync(args);
    if (fault !== null) throw syscallError(op, fault.errno);
    return (this.inner.async[op] as (...a: unknown[]) => Promise<unknown>)(...args);
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
    if (planned.fault === 'short' && op !== 'write') throw new Error(`a short fault only applies to write, not ${op}`);
    return planned.fault;
  }

  private shortWriteSync(args: unknown[]): number {
    const [fd, data, position] = args as [number, Uint8Array, number];
    return this.inner.sync.write(fd, data.subarray(0, data.length >> 1), position);
  }

  private shortWriteAsync(args: unknown[]): Promise<number> {
    const [fd, data, position] = args as [number, Uint8Array, number];
    return this.inner.async.write(fd, data.subarray(0, data.length >> 1), position);
  }
}

function syscallError(op: IoOp, code: keyof typeof osConstants.errno): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${code}: injected failure of ${op}`);
  error.code = code;
  error.errno = osConstants.errno[code];
  error.syscall = op;
  return error;
}
