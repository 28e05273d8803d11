import { afterAll, beforeAll } from 'vitest';
import { connectJetStream, type ConnectOptions, type JetStreamConnection, type StreamSpec } from '../../src/jetstream/index.js';
import type { NatsCluster } from './nats-cluster.js';

/** A connection to the file's cluster (from `useCluster`), opened before its tests and closed after them. */
export function useConnection(cluster: () => NatsCluster, options: Omit<ConnectOptions, 'servers'> = {}): () => JetStreamConnection {
  let connection: JetStreamConnection | undefined;
  beforeAll(async () => {
    connection = await connectJetStream({ ...options, servers: cluster().servers });
  });
  afterAll(async () => {
    await connection?.close();
  });
  return () => {
    if (connection === undefined) throw new Error('not connected yet (useConnection connects in beforeAll)');
    return connection;
  };
}

/** A stream taking the subjects `<name>.>`, with a 60 s duplicate window and messages up to 1 MiB unless `overrides` say otherwise. */
export function streamSpec(name: string, overrides: Partial<StreamSpec> = {}): StreamSpec {
  return { name, subjects: [`${name}.>`], duplicateWindowMs: 60_000, maxMsgSize: 1024 * 1024, ...overrides };
}
