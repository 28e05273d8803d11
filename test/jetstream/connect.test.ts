import { afterEach, describe, expect, it } from 'vitest';
import {
  compareServerVersions,
  connectJetStream,
  requireServerVersion,
  type JetStreamConnection,
} from '../../src/jetstream/index.js';
import { useCluster } from '../helpers/nats-cluster.js';

const cluster = useCluster({ nodes: 3 });
const open: JetStreamConnection[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((connection) => connection.close()));
});

describe('connectJetStream', () => {
  it('connects to the cluster and reports the server version and max_payload', async () => {
    const connection = await connectJetStream({ servers: cluster().servers, name: 'segwal-test' });
    open.push(connection);
    expect(connection.serverVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(connection.maxPayload).toBe(1024 * 1024); // nats-server's default
    expect(connection.nc.info?.cluster).toBe('segwal-test');
  });

  it('accepts a server at or above the configured minimum', async () => {
    const connection = await connectJetStream({ servers: cluster().servers, minServerVersion: '2.9.0' });
    open.push(connection);
    expect(compareServerVersions(connection.serverVersion, '2.9.0')).toBeGreaterThanOrEqual(0);
  });

  it('refuses a server below the configured minimum with WAL_REPLICATION naming both versions', async () => {
    const error = await connectJetStream({ servers: cluster().servers, minServerVersion: '99.0.0' }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'WAL_REPLICATION',
      message: expect.stringMatching(/nats-server \d+\.\d+\.\d+ is older than the minimum 99\.0\.0/),
    });
  });

  it('fails with WAL_REPLICATION when no server answers', async () => {
    const servers = ['nats://127.0.0.1:1']; // a privileged port nothing listens on: refused at once
    const error = await connectJetStream({ servers, reconnect: { maxAttempts: 0 } }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'WAL_REPLICATION', message: expect.stringContaining(`connect to ${servers[0]}`) });
  });

  it('refuses bad or unknown options with WAL_INVALID_OPTIONS', async () => {
    await expect(connectJetStream({ servers: [] })).rejects.toMatchObject({ code: 'WAL_INVALID_OPTIONS' });
    await expect(connectJetStream({ servers: cluster().servers, port: 4222 } as never)).rejects.toMatchObject({
      code: 'WAL_INVALID_OPTIONS',
      message: expect.stringContaining('`port`'),
    });
  });
});

describe('server versions', () => {
  it('compares major, minor and patch as numbers', () => {
    expect(compareServerVersions('2.9.10', '2.9.9')).toBeGreaterThan(0);
    expect(compareServerVersions('2.9.10', '2.10.0')).toBeLessThan(0);
    expect(compareServerVersions('v2.11.0', '2.11.0')).toBe(0);
    expect(compareServerVersions('2.11.0-RC.1', '2.11.0')).toBe(0);
  });

  it('requireServerVersion throws WAL_REPLICATION below the minimum and nothing at or above it', () => {
    expect(() => requireServerVersion('2.9.10', '2.10.0')).toThrow(
      expect.objectContaining({ code: 'WAL_REPLICATION', message: expect.stringContaining('2.9.10 is older than the minimum 2.10.0') }),
    );
    expect(() => requireServerVersion('2.10.0', '2.10.0')).not.toThrow();
  });

  it('a string that is not a version is WAL_INVALID_OPTIONS', () => {
    expect(() => compareServerVersions('2.9', '2.9.0')).toThrow(expect.objectContaining({ code: 'WAL_INVALID_OPTIONS' }));
  });
});
