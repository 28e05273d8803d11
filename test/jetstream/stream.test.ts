import { describe, expect, it } from 'vitest';
import { describeStream, ensureStream } from '../../src/jetstream/index.js';
import { streamSpec as spec, useConnection } from '../helpers/jetstream.js';
import { useCluster } from '../helpers/nats-cluster.js';

const cluster = useCluster({ nodes: 3 });
const connection = useConnection(cluster);

describe('ensureStream', () => {
  it('creates an R3 file stream with the given settings and reports its config, state and replicas', async () => {
    const report = await ensureStream(connection(), spec('created'));
    expect(report.created).toBe(true);
    expect(report.config).toMatchObject({
      name: 'created',
      subjects: ['created.>'],
      num_replicas: 3,
      storage: 'file',
      retention: 'limits',
      duplicate_window: 60_000 * 1e6, // nanoseconds
      max_msg_size: 1024 * 1024,
      allow_direct: false,
    });
    expect(report.state).toMatchObject({ messages: 0, last_seq: 0 });
    expect(report.cluster?.leader).toMatch(/^n[123]$/);
    expect(report.cluster?.replicas).toHaveLength(2);
  });

  it('finds a stream it created before and leaves it as it is', async () => {
    const first = await ensureStream(connection(), spec('again'));
    await connection().js.publish('again.x', 'kept');
    const second = await ensureStream(connection(), spec('again'));
    expect(second.created).toBe(false);
    expect(second.config).toEqual(first.config);
    expect(second.state.messages).toBe(1);
  });

  it('takes the subjects of an existing stream in any order', async () => {
    await ensureStream(connection(), { ...spec('order'), subjects: ['order.a', 'order.b'] });
    const again = await ensureStream(connection(), { ...spec('order'), subjects: ['order.b', 'order.a'] });
    expect(again.created).toBe(false);
  });

  it('refuses an existing stream with other settings, naming each difference, and does not edit it', async () => {
    await ensureStream(connection(), spec('differs'));
    const error = await ensureStream(connection(), { ...spec('differs'), replicas: 1, duplicateWindowMs: 1_000 }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'WAL_REPLICATION' });
    expect((error as Error).message).toContain('stream differs exists with other settings');
    expect((error as Error).message).toContain('num_replicas is 3, not 1');
    expect((error as Error).message).toContain('duplicate_window is 60000000000, not 1000000000');
    expect((await describeStream(connection(), 'differs')).config).toMatchObject({ num_replicas: 3, duplicate_window: 60e9 });
  });

  it('refuses a stream made elsewhere with a limit that would drop messages', async () => {
    await connection().jsm.streams.add({
      name: 'limited',
      subjects: ['limited.>'],
      num_replicas: 3,
      storage: 'file',
      duplicate_window: 60e9,
      max_msg_size: 1024 * 1024,
      max_msgs: 100,
    });
    await expect(ensureStream(connection(), spec('limited'))).rejects.toMatchObject({
      code: 'WAL_REPLICATION',
      message: expect.stringContaining('max_msgs is 100, not -1'),
    });
  });

  it('refuses a bad spec with WAL_INVALID_OPTIONS before asking the server', async () => {
    await expect(ensureStream(connection(), { ...spec('bad'), subjects: [] })).rejects.toMatchObject({
      code: 'WAL_INVALID_OPTIONS',
      message: expect.stringContaining('`subjects`'),
    });
    await expect(ensureStream(connection(), { ...spec('bad'), replicas: 0 })).rejects.toMatchObject({
      code: 'WAL_INVALID_OPTIONS',
    });
  });
});

describe('describeStream', () => {
  it('reports a missing stream as WAL_REPLICATION', async () => {
    await expect(describeStream(connection(), 'missing')).rejects.toMatchObject({
      code: 'WAL_REPLICATION',
      message: 'stream missing does not exist',
    });
  });
});
