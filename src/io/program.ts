import { WalError } from '../errors.js';
import type { IoOps, WalIo } from './types.js';

/*
 * An io program is a generator that yields io calls and receives their
 * results. The logic of open, drain, rotation, truncation and close is written
 * once as a program; `runSync` executes it with blocking calls (the *Sync API),
 * `runAsync` with promise calls (the async API, never blocking the loop).
 */

export type IoCall =
  | { [K in keyof IoOps]: { op: K; args: Parameters<IoOps[K]> } }[keyof IoOps]
  /** A value from user code (e.g. `onReplay`): awaited by `runAsync`, refused by `runSync` if it is a promise. */
  | { op: 'await'; value: unknown };

export type IoProgram<T> = Generator<IoCall, T, unknown>;

/** `const fd = yield* call('openSegment', path, true)`: one io call, typed. */
export function* call<K extends keyof IoOps>(op: K, ...args: Parameters<IoOps[K]>): IoProgram<ReturnType<IoOps[K]>> {
  return (yield { op, args } as IoCall) as ReturnType<IoOps[K]>;
}

/** `yield* awaitValue(callback())`: lets a program run user code that may return a promise. */
export function* awaitValue(value: unknown): IoProgram<unknown> {
  return yield { op: 'await', value };
}

type AnyOp = (...args: unknown[]) => unknown;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}

/** The errors runSync throws into a program for a promise it cannot wait for. */
const syncAwaitRefusals = new WeakSet<object>();

/** True for the error runSync raises when user code returns a promise to a *Sync method. */
export function isSyncAwaitRefusal(error: unknown): boolean {
  return typeof error === 'object' && error !== null && syncAwaitRefusals.has(error);
}

export function runSync<T>(io: WalIo, program: IoProgram<T>): T {
  let step = program.next();
  while (!step.done) {
    const request = step.value;
    let result: unknown;
    try {
      if (request.op === 'await') {
        if (isThenable(request.value)) {
          const refusal = new WalError('WAL_INVALID_OPTIONS', 'a callback returned a promise to a *Sync method; use the async API');
          syncAwaitRefusals.add(refusal);
          throw refusal;
        }
        result = request.value;
      } else {
        result = (io.sync[request.op] as AnyOp)(...request.args);
      }
    } catch (error) {
      step = program.throw(error);
      continue;
    }
    step = program.next(result);
  }
  return step.value;
}

export async function runAsync<T>(io: WalIo, program: IoProgram<T>): Promise<T> {
  let step = program.next();
  while (!step.done) {
    const request = step.value;
    let result: unknown;
    try {
      result = await (request.op === 'await' ? request.value : (io.async[request.op] as AnyOp)(...request.args));
    } catch (error) {
      step = program.throw(error);
      continue;
    }
    step = program.next(result);
  }
  return step.value;
}
