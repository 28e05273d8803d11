import { describe, expect, it } from 'vitest';
import {
  connectJetStream,
  ensureStream,
  publishMessage,
  readStream,
  type StoredMessage,
} from '../../src/jetstream/index.js';
import { texts } from '../helpers/bytes.js';
import { streamSpec, useConnection } from '../helpers/jetstream.js';
import { useCluster } from '../helpers/nats-cluster.js';

const cluster = useCluster({ nodes: 3 });
const connection = useConnection(cluster);

async function streamWith(name: string, count: number, size = 0): Promise<void> {
  await ensureStream(connection(), streamSpec(name));
  for (let i = 1; i <= count; i++) {
    const data = size === 0 ? Buffer.from(`m${i}`) : new Uint8Array(size).fill(i % 256);
    await publishMessage(connection(), `${name}.a`, data, { msgID: `m${i}`, headers: { 'Segwal-N': String(i) } });
  }
}

/** Takes messages until `until` says stop, then aborts; returns them and how the iteration ended. */
async function readUntil(
  options: { stream: string; fromSeq: number; maxBytesInFlight: number },
  until: (seen: StoredMessage[]) => boolean | Promise<boolean>,
): Promise<{ seen: StoredMessage[]; error: unknown }> {
  const controller = new AbortController();
  const seen: StoredMessage[] = [];
  try {
    for await (const message of readStream(connection(), { ...options, signal: controller.signal })) {
      seen.push(message);
      if (await until(seen)) controller.abort();
    }
    return { seen, error: undefined };
  } catch (error) {
    return { seen, error };
  }
}

describe('readStream', () => {
  it('yields the messages in order from the given sequence, with headers, then new ones, and ends quietly on abort', async () => {
    await streamWith('order', 20);
    let published = false;
    const { seen, error } = await readUntil({ stream: 'order', fromSeq: 5, maxBytesInFlight: 4096 }, async (so) => {
      if (so.length === 16 && !published) {
        // Caught up with what was there: what comes now arrives through the same iteration.
        published = true;
        for (let i = 21; i <= 25; i++) await publishMessage(connection(), 'order.a', Buffer.from(`m${i}`), { msgID: `m${i}` });
      }
      return so.length === 21;
    });
    expect(error).toBeUndefined();
    expect(seen.map((m) => m.seq)).toEqual(Array.from({ length: 21 }, (_, i) => i + 5));
    expect(texts(seen.map((m) => m.data))).toEqual(Array.from({ length: 21 }, (_, i) => `m${i + 5}`));
    expect(seen[0]).toMatchObject({ subject: 'order.a', headers: { 'Segwal-N': '5', 'Nats-Msg-Id': 'm5' } });
  });

  it('keeps no more than maxBytesInFlight delivered ahead of the reader', async () => {
    const size = 1024;
    const maxBytesInFlight = 8 * 1024;
    await streamWith('bounded', 200, size);
    const consumerDelivered = async () => {
      const [consumer] = await connection().jsm.consumers.list('bounded').next();
      return consumer?.delivered.stream_seq ?? 0;
    };
    let ahead = -1;
    const { seen, error } = await readUntil({ stream: 'bounded', fromSeq: 1, maxBytesInFlight }, async (so) => {
      if (so.length === 10) {
        // Stop taking for a while: a reader that prefetched freely would now hold the whole stream.
        await new Promise((resolve) => setTimeout(resolve, 500));
        ahead = (await consumerDelivered()) - so.length;
      }
      return so.length === 200;
    });
    expect(error).toBeUndefined();
    expect(ahead).toBeGreaterThanOrEqual(0);
    expect(ahead).toBeLessThanOrEqual(maxBytesInFlight / size);
    expect(seen.map((m) => m.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(seen.every((m) => m.data.byteLength === size && m.data[0] === m.seq % 256)).toBe(true);
  });

  it('fails with WAL_REPLICATION, rather than stall, on a message larger than maxBytesInFlight', async () => {
    await streamWith('oversized', 1, 4096);
    const { seen, error } = await readUntil({ stream: 'oversized', fromSeq: 1, maxBytesInFlight: 1024 }, () => false);
    expect(seen).toEqual([]);
    expect(error).toMatchObject({
      code: 'WAL_REPLICATION',
      message: expect.stringContaining('the next message is larger than maxBytesInFlight (1024 bytes)'),
    });
  });

  it('ends with WAL_REPLICATION when the connection closes without an abort', async () => {
    await streamWith('closing', 3);
    const own = await connectJetStream({ servers: cluster().servers });
    const seen: number[] = [];
    const error = await (async () => {
      for await (const message of readStream(own, { stream: 'closing', fromSeq: 1, maxBytesInFlight: 4096 })) {
        seen.push(message.seq);
        if (seen.length === 3) void own.close();
      }
    })().catch((e: unknown) => e);
    expect(seen).toEqual([1, 2, 3]);
    expect(error).toMatchObject({
      code: 'WAL_REPLICATION',
      message: 'read stream closing ended after sequence 3 without an abort: the connection closed',
    });
  });

  it('refuses bad options with WAL_INVALID_OPTIONS', async () => {
    const read = readStream(connection(), { stream: 'order', fromSeq: 0, maxBytesInFlight: 0 });
    await expect(read.next()).rejects.toMatchObject({
      code: 'WAL_INVALID_OPTIONS',
      message: expect.stringMatching(/`fromSeq`.*`maxBytesInFlight`/),
    });
  });
});
