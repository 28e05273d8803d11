import { describe, expect, it } from 'vitest';
import {
  describeStream,
  ensureStream,
  lastMessageOnSubject,
  publishMessage,
  ReplicationConflictError,
  type StreamReport,
  type StreamSpec,
} from '../../src/jetstream/index.js';
import { streamSpec, useConnection } from '../helpers/jetstream.js';
import { useCluster } from '../helpers/nats-cluster.js';

const cluster = useCluster({ nodes: 3 });
const connection = useConnection(cluster);

async function freshStream(name: string, overrides: Partial<StreamSpec> = {}): Promise<StreamReport> {
  return ensureStream(connection(), streamSpec(name, overrides));
}

async function messagesIn(stream: string): Promise<number> {
  return (await describeStream(connection(), stream)).state.messages;
}

describe('publishMessage', () => {
  it('returns the stream, the sequence and duplicate: false, and stores the headers', async () => {
    const stream = await freshStream('acks');
    const first = await publishMessage(connection(), 'acks.a', Buffer.from('one'), { headers: { 'Segwal-Log': 'log-1' }, msgID: 'a-1' });
    const second = await publishMessage(connection(), 'acks.a', Buffer.from('two'));
    expect(first).toEqual({ stream: 'acks', seq: 1, duplicate: false });
    expect(second).toEqual({ stream: 'acks', seq: 2, duplicate: false });
    const stored = await connection().jsm.streams.getMessage('acks', { seq: 1 });
    expect(stored?.header.get('Segwal-Log')).toBe('log-1');
    expect(stored?.header.get('Nats-Msg-Id')).toBe('a-1');
    expect(stream.config.name).toBe('acks');
  });

  it('drops a repeated msgID within the duplicate window and acks it as a duplicate of the first', async () => {
    await freshStream('dedupe');
    const first = await publishMessage(connection(), 'dedupe.a', Buffer.from('once'), { msgID: 'tx-1' });
    const again = await publishMessage(connection(), 'dedupe.a', Buffer.from('once'), { msgID: 'tx-1' });
    const other = await publishMessage(connection(), 'dedupe.a', Buffer.from('twice'), { msgID: 'tx-2' });
    expect(again).toEqual({ stream: 'dedupe', seq: first.seq, duplicate: true });
    expect(other).toMatchObject({ seq: first.seq + 1, duplicate: false });
    expect(await messagesIn('dedupe')).toBe(2);
  });

  it('stores a repeated msgID again once the duplicate window has passed', async () => {
    await freshStream('window', { duplicateWindowMs: 300 });
    await publishMessage(connection(), 'window.a', Buffer.from('x'), { msgID: 'late' });
    await new Promise((resolve) => setTimeout(resolve, 900));
    const again = await publishMessage(connection(), 'window.a', Buffer.from('x'), { msgID: 'late' });
    expect(again).toMatchObject({ seq: 2, duplicate: false });
  });

  it('expect.lastMsgID: stores when the stream\'s last msgID matches, refuses with a typed error when not', async () => {
    await freshStream('chain');
    await publishMessage(connection(), 'chain.a', Buffer.from('1'), { msgID: 'm1' });
    await expect(publishMessage(connection(), 'chain.a', Buffer.from('2'), { msgID: 'm2', expect: { lastMsgID: 'm1' } })).resolves.toMatchObject({
      seq: 2,
    });
    const error = await publishMessage(connection(), 'chain.a', Buffer.from('3'), { msgID: 'm3', expect: { lastMsgID: 'm1' } }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ReplicationConflictError);
    expect(error).toMatchObject({
      code: 'WAL_REPLICATION_CONFLICT',
      expectation: 'lastMsgID',
      apiCode: 10070,
      message: 'publish to chain.a refused: wrong last msg ID: m2', // the server names the actual last msgID
    });
    expect(await messagesIn('chain')).toBe(2);
  });

  it('expect.lastSequence: 0 means an empty stream; a mismatch is refused with a typed error', async () => {
    await freshStream('seqs');
    await expect(publishMessage(connection(), 'seqs.a', Buffer.from('1'), { expect: { lastSequence: 0 } })).resolves.toMatchObject({ seq: 1 });
    await expect(publishMessage(connection(), 'seqs.b', Buffer.from('2'), { expect: { lastSequence: 1 } })).resolves.toMatchObject({ seq: 2 });
    const error = await publishMessage(connection(), 'seqs.a', Buffer.from('3'), { expect: { lastSequence: 1 } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReplicationConflictError);
    expect(error).toMatchObject({
      code: 'WAL_REPLICATION_CONFLICT',
      expectation: 'lastSequence',
      apiCode: 10071,
      message: 'publish to seqs.a refused: wrong last sequence: 2',
    });
    await expect(publishMessage(connection(), 'seqs.a', Buffer.from('4'), { expect: { lastSequence: 0 } })).rejects.toMatchObject({
      expectation: 'lastSequence',
    });
    expect(await messagesIn('seqs')).toBe(2);
  });

  it('a retry of a stored message with the same msgID is acked as a duplicate even though its expectation no longer holds', async () => {
    // The server checks the msgID before the expectations, so a publisher
    // that lost an ack can resend exactly what it sent and learn the sequence.
    await freshStream('retry');
    await publishMessage(connection(), 'retry.a', Buffer.from('1'), { msgID: 'r1' });
    const sent = await publishMessage(connection(), 'retry.a', Buffer.from('2'), { msgID: 'r2', expect: { lastMsgID: 'r1' } });
    const resent = await publishMessage(connection(), 'retry.a', Buffer.from('2'), { msgID: 'r2', expect: { lastMsgID: 'r1' } });
    const resentBySeq = await publishMessage(connection(), 'retry.a', Buffer.from('2'), { msgID: 'r2', expect: { lastSequence: 1 } });
    expect(resent).toEqual({ ...sent, duplicate: true });
    expect(resentBySeq).toEqual({ ...sent, duplicate: true });
    expect(await messagesIn('retry')).toBe(2);
  });

  it('refuses a message over the server\'s max_payload with a clear WAL_REPLICATION, sending nothing', async () => {
    await freshStream('big');
    const tooBig = new Uint8Array(connection().maxPayload + 1);
    const error = await publishMessage(connection(), 'big.a', tooBig, { msgID: 'big' }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'WAL_REPLICATION',
      message: `publish to big.a refused: ${tooBig.byteLength} bytes of data plus headers are over the server's max_payload of 1048576 bytes; nothing was sent`,
    });
    expect(await messagesIn('big')).toBe(0);
    // The connection is still usable.
    await expect(publishMessage(connection(), 'big.a', Buffer.from('small'))).resolves.toMatchObject({ seq: 1 });
  });

  it('a message over the stream\'s max_msg_size is refused by the server (JetStream API error 10054)', async () => {
    await freshStream('capped', { maxMsgSize: 1024 });
    await expect(publishMessage(connection(), 'capped.a', new Uint8Array(2048))).rejects.toMatchObject({
      code: 'WAL_REPLICATION',
      message: 'publish to capped.a failed: JetStream API error 10054: message size exceeds maximum allowed',
    });
    expect(await messagesIn('capped')).toBe(0);
  });

  it('a subject no stream takes fails with WAL_REPLICATION saying nothing serves it', async () => {
    await expect(publishMessage(connection(), 'nowhere.a', Buffer.from('x'))).rejects.toMatchObject({
      code: 'WAL_REPLICATION',
      message: expect.stringContaining('publish to nowhere.a failed: no responders'),
    });
  });

  it('refuses both expectations at once with WAL_INVALID_OPTIONS', async () => {
    await freshStream('both');
    const expectBoth = { lastMsgID: 'a', lastSequence: 1 } as never;
    await expect(publishMessage(connection(), 'both.a', Buffer.from('x'), { expect: expectBoth })).rejects.toMatchObject({
      code: 'WAL_INVALID_OPTIONS',
    });
    expect(await lastMessageOnSubject(connection(), { name: 'both' }, 'both.a')).toBeNull();
  });
});
