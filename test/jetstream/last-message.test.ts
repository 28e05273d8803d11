import { describe, expect, it } from 'vitest';
import {
  ensureStream,
  lastMessageOnSubject,
  publishMessage,
} from '../../src/jetstream/index.js';
import { texts } from '../helpers/bytes.js';
import { streamSpec, useConnection } from '../helpers/jetstream.js';
import { useCluster } from '../helpers/nats-cluster.js';

const cluster = useCluster({ nodes: 3 });
const connection = useConnection(cluster);


describe.each([
  { path: 'the stream leader (getMessage)', allowDirect: false },
  { path: 'a direct get', allowDirect: true },
])('lastMessageOnSubject through $path', ({ allowDirect }) => {
  const name = allowDirect ? 'direct' : 'leader';

  it('is null while the stream holds nothing on the subject', async () => {
    const stream = await ensureStream(connection(), streamSpec(name, { allowDirect }));
    expect(stream.config.allow_direct).toBe(allowDirect);
    expect(await lastMessageOnSubject(connection(), stream.config, `${name}.a`)).toBeNull();
  });

  it('returns the last of several publishes per subject with its headers, sequence and time', async () => {
    const stream = await ensureStream(connection(), streamSpec(name, { allowDirect }));
    const before = Date.now();
    for (let i = 1; i <= 5; i++) {
      await publishMessage(connection(), `${name}.a`, Buffer.from(`a${i}`), { msgID: `a${i}`, headers: { 'Segwal-N': String(i) } });
      await publishMessage(connection(), `${name}.b`, Buffer.from(`b${i}`), { msgID: `b${i}` });
    }
    // A direct get may be answered by any replica, and one the ack did not wait for can be a few
    // messages behind (about 4 % of gets right after an ack, measured here); wait until none is.
    if (allowDirect) await cluster().waitForReplicas(name);
    const lastA = await lastMessageOnSubject(connection(), stream.config, `${name}.a`);
    const lastB = await lastMessageOnSubject(connection(), stream.config, `${name}.b`);
    expect(lastA).toMatchObject({ subject: `${name}.a`, seq: 9 });
    // Only the headers stored with the message: a direct get's Nats-Stream, Nats-Sequence… are left out.
    expect(lastA?.headers).toEqual({ 'Segwal-N': '5', 'Nats-Msg-Id': 'a5' });
    expect(texts([lastA?.data ?? new Uint8Array()])).toEqual(['a5']);
    expect(lastA?.time.getTime()).toBeGreaterThanOrEqual(before - 1_000); // the servers' clock is this machine's
    expect(lastB).toMatchObject({ subject: `${name}.b`, seq: 10, headers: { 'Nats-Msg-Id': 'b5' } });
    expect(texts([lastB?.data ?? new Uint8Array()])).toEqual(['b5']);
  });
});

describe('lastMessageOnSubject through the stream leader', () => {
  it('returns the message just acked, every time', async () => {
    const stream = await ensureStream(connection(), streamSpec('fresh'));
    for (let i = 1; i <= 50; i++) {
      const ack = await publishMessage(connection(), 'fresh.a', Buffer.from(`${i}`));
      expect((await lastMessageOnSubject(connection(), stream.config, 'fresh.a'))?.seq).toBe(ack.seq);
    }
  });
});

describe('lastMessageOnSubject errors', () => {
  it('a missing stream is WAL_REPLICATION', async () => {
    await expect(lastMessageOnSubject(connection(), { name: 'absent' }, 'absent.a')).rejects.toMatchObject({
      code: 'WAL_REPLICATION',
      message: 'last message on absent.a in stream absent failed: JetStream API error 10059: stream not found',
    });
  });
});
