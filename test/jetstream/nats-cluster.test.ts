import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startCluster } from '../helpers/nats-cluster.js';

/** Whether something accepts TCP connections at a nats:// URL. */
function listening(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('the test cluster helper', () => {
  const path = process.env.PATH;
  afterEach(() => {
    process.env.PATH = path;
  });

  it('says plainly what to install when nats-server is not on PATH', async () => {
    process.env.PATH = '/nonexistent';
    await expect(startCluster({ nodes: 3 })).rejects.toThrow(
      "nats-server not found: install Debian's package (apt-get install -y nats-server); .ci/run does this",
    );
  });

  it('starts three servers on 127.0.0.1 and close() stops them all', async () => {
    const cluster = await startCluster({ nodes: 3 });
    expect(cluster.servers).toHaveLength(3);
    expect(cluster.servers.every((url) => url.startsWith('nats://127.0.0.1:'))).toBe(true);
    expect(await Promise.all(cluster.servers.map(listening))).toEqual([true, true, true]);
    await cluster.close();
    expect(await Promise.all(cluster.servers.map(listening))).toEqual([false, false, false]);
  });
});
