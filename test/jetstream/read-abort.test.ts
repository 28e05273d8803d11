import { describe, expect, it } from 'vitest';
import type { JetStreamConnection } from '../../src/jetstream/connect.js';
import { readStream } from '../../src/jetstream/read.js';

type AbortPoint = 'get' | 'consume' | 'never';

/**
 * A connection to an idle stream: its consumer never delivers a message, and
 * its iteration ends only when closed (as a real one kept alive by heartbeats
 * would). `abortIn` aborts `controller` while that step is awaited.
 */
function idleConnection(controller: AbortController, abortIn: AbortPoint) {
  const consumer = { closes: 0 };
  let wake = () => {};
  const messages = {
    close: () => {
      consumer.closes++;
      wake();
      return Promise.resolve();
    },
    status: () => (async function* () {})(),
    [Symbol.asyncIterator]: () => ({
      next: () =>
        consumer.closes > 0
          ? Promise.resolve({ done: true, value: undefined })
          : new Promise((resolve) => {
              wake = () => resolve({ done: true, value: undefined });
            }),
    }),
  };
  const get = () => {
    if (abortIn === 'get') controller.abort();
    return Promise.resolve({
      consume: () => {
        if (abortIn === 'consume') controller.abort();
        return Promise.resolve(messages);
      },
    });
  };
  const connection = { maxPayload: 1 << 20, nc: { isClosed: () => false }, js: { consumers: { get } } } as unknown as JetStreamConnection;
  return { connection, consumer };
}

/** Settles with the generator's next result, or fails if it is still waiting after a second. */
function nextWithin1s<T>(next: Promise<IteratorResult<T>>): Promise<IteratorResult<T>> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('readStream did not end within 1 s of the abort')), 1_000);
  });
  return Promise.race([next, late]).finally(() => clearTimeout(timer));
}

describe('readStream abort', () => {
  it.each(['get', 'consume'] as const)('ends and closes the consumer when the abort lands while awaiting %s()', async (abortIn) => {
    const controller = new AbortController();
    const { connection, consumer } = idleConnection(controller, abortIn);
    const reader = readStream(connection, { stream: 's', fromSeq: 1, maxBytesInFlight: 1 << 22, signal: controller.signal });
    await expect(nextWithin1s(reader.next())).resolves.toEqual({ done: true, value: undefined });
    expect(consumer.closes).toBeGreaterThan(0);
  });

  it('ends and closes the consumer when the abort lands while waiting for a message', async () => {
    const controller = new AbortController();
    const { connection, consumer } = idleConnection(controller, 'never');
    const reader = readStream(connection, { stream: 's', fromSeq: 1, maxBytesInFlight: 1 << 22, signal: controller.signal });
    const next = reader.next();
    // Lets the reader get past the setup and wait on the consumer.
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort();
    await expect(nextWithin1s(next)).resolves.toEqual({ done: true, value: undefined });
    expect(consumer.closes).toBeGreaterThan(0);
  });
});
