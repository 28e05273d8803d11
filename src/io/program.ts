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
  | { op: 'await'; value: unknown }
  /** An io call begun now and finished later (`begin`, `finish`). */
  | { op: 'begin'; call: { op: keyof IoOps; args: unknown[] } }
  /** Programs run side by side (`all`). */
  | { op: 'all'; programs: IoProgram<unknown>[] };

/**
 * An io call in flight: `runAsync` lets it run while the program goes on
 * (a read ahead of the one being parsed); `runSync` has already made it.
 */
export type Begun<T> = { promise: Promise<T> } | { value: T } | { error: unknown };

export type IoProgram<T> = Generator<IoCall, T, unknown>;

/** `const fd = yield* call('openSegment', path, true)`: one io call, typed. */
export function* call<K extends keyof IoOps>(op: K, ...args: Parameters<IoOps[K]>): IoProgram<ReturnType<IoOps[K]>> {
  return (yield { op, args } as IoCall) as ReturnType<IoOps[K]>;
}

/** `const read = yield* begin('read', ...)`, later `yield* finish(read)`: one io call, overlapping what the program does between. */
export function* begin<K extends keyof IoOps>(op: K, ...args: Parameters<IoOps[K]>): IoProgram<Begun<ReturnType<IoOps[K]>>> {
  return (yield { op: 'begin', call: { op, args } } as IoCall) as Begun<ReturnType<IoOps[K]>>;
}

/** The result of a begun call; throws its error. Every begun call is finished before what it uses (an fd, a buffer) is let go. */
export function* finish<T>(begun: Begun<T>): IoProgram<T> {
  if ('promise' in begun) return (yield { op: 'await', value: begun.promise }) as T;
  if ('error' in begun) throw begun.error;
  return begun.value;
}

/**
 * Runs `programs` side by side and returns their results in order:
 * `runAsync` runs them concurrently (their io calls overlap on the thread
 * pool), `runSync` one after the other. Each runs to its end; the first
 * failure is thrown once all have ended, so none is left holding a file.
 */
export function* all<T>(programs: IoProgram<T>[]): IoProgram<T[]> {
  return (yield { op: 'all', programs }) as T[];
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
      } else if (request.op === 'begin') {
        result = settle(() => (io.sync[request.call.op] as AnyOp)(...request.call.args)); // made now; `finish` hands its outcome over
      } else if (request.op === 'all') {
        result = valuesOrFirstFailure(request.programs.map((program) => settle(() => runSync(io, program))));
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
      if (request.op === 'begin') {
        const promise = beginAsync(io, request.call);
        // Its failure is thrown by `finish`; until then it must not count as unhandled.
        promise.catch(() => undefined);
        result = { promise };
      } else if (request.op === 'all') {
        result = valuesOrFirstFailure(await Promise.all(request.programs.map((program) => runAsync(io, program).then(settled, failed))));
      } else {
        result = await (request.op === 'await' ? request.value : (io.async[request.op] as AnyOp)(...request.args));
      }
    } catch (error) {
      step = program.throw(error);
      continue;
    }
    step = program.next(result);
  }
  return step.value;
}

/** runAsync's `begin`: the call's promise, a synchronous throw included. */
function beginAsync(io: WalIo, begun: { op: keyof IoOps; args: unknown[] }): Promise<unknown> {
  try {
    return (io.async[begun.op] as AnyOp)(...begun.args) as Promise<unknown>;
  } catch (error) {
    return Promise.reject(error);
  }
}

/** An outcome: a `Begun` call runSync made, or a program `all` ran. */
type Settled = Exclude<Begun<unknown>, { promise: Promise<unknown> }>;
const settled = (value: unknown): Settled => ({ value });
const failed = (error: unknown): Settled => ({ error });

function settle(run: () => unknown): Settled {
  try {
    return settled(run());
  } catch (error) {
    return failed(error);
  }
}

function valuesOrFirstFailure(outcomes: Settled[]): unknown[] {
  const failure = outcomes.find((outcome) => 'error' in outcome);
  if (failure !== undefined) throw (failure as { error: unknown }).error;
  return outcomes.map((outcome) => (outcome as { value: unknown }).value);
}
