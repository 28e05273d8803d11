// A three-node NATS JetStream cluster on this machine, for the examples: one
// nats-server process per node, every port on 127.0.0.1 (chosen free by the
// OS), every store in a directory the caller gives. For trying segwal out;
// a real deployment runs its own cluster on several machines.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** Where Debian's package puts nats-server (/usr/sbin), which a user's PATH often lacks. */
const EXTRA_DIRS = ['/usr/sbin'];
const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;

/** The nats-server binary on PATH or in /usr/sbin, or null. */
export function findNatsServer() {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), ...EXTRA_DIRS].filter((dir) => dir !== '');
  for (const dir of dirs) {
    const candidate = path.join(dir, 'nats-server');
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * Starts `nodes` nats-server processes routed to one another, with their
 * configs, logs and stores under `dir`, and resolves once every node says
 * it is healthy (JetStream up, a meta leader elected). `stop()` ends them by
 * pid; should this process exit first, they are killed on its way out.
 */
export async function startLocalCluster(binary, dir, nodes = 3) {
  const ports = await freePorts(nodes * 3);
  const layout = Array.from({ length: nodes }, (_, i) => ({
    name: `n${i + 1}`,
    client: ports[3 * i],
    route: ports[3 * i + 1],
    monitor: ports[3 * i + 2],
  }));
  const children = layout.map((node) => {
    const config = path.join(dir, `${node.name}.conf`);
    const routes = layout.filter((other) => other !== node).map((other) => `"nats-route://127.0.0.1:${other.route}"`);
    fs.writeFileSync(
      config,
      [
        `server_name: ${node.name}`,
        'host: "127.0.0.1"',
        `port: ${node.client}`,
        `http: "127.0.0.1:${node.monitor}"`,
        `jetstream { store_dir: ${JSON.stringify(path.join(dir, `${node.name}-store`))} }`,
        `cluster { name: segwal-example, listen: "127.0.0.1:${node.route}", routes: [ ${routes.join(', ')} ] }`,
        '',
      ].join('\n'),
    );
    const log = fs.openSync(path.join(dir, `${node.name}.log`), 'a');
    const child = spawn(binary, ['-c', config], { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    return child;
  });
  const killAll = () => children.forEach((child) => hasExited(child) || child.kill('SIGKILL'));
  process.once('exit', killAll);

  const cluster = {
    servers: layout.map((node) => `nats://127.0.0.1:${node.client}`),
    pids: children.map((child) => child.pid),
    /** SIGTERM to each server by pid, SIGKILL to one that has not exited after 5 s; resolves once all have exited. */
    async stop() {
      process.off('exit', killAll);
      await Promise.all(children.map((child) => stopChild(child)));
    },
  };
  try {
    await waitUntilHealthy(layout, children, dir);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

/** Ports the OS says are free: all held open at once so none repeats, then released for the servers. */
async function freePorts(count) {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(server));
    })),
  );
  const ports = servers.map((server) => server.address().port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/** Polls each node's /healthz, which answers 200 once its JetStream is up and the cluster has a meta leader. */
async function waitUntilHealthy(layout, children, dir) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const exited = layout.filter((_, i) => hasExited(children[i]));
    if (exited.length > 0) throw new Error(`nats-server ${exited.map((node) => node.name).join(', ')} exited at start; see the logs in ${dir}`);
    const healthy = await Promise.all(layout.map((node) => fetch(`http://127.0.0.1:${node.monitor}/healthz`).then((response) => response.ok, () => false)));
    if (healthy.every(Boolean)) return;
    if (Date.now() > deadline) throw new Error(`the nats-server cluster was not healthy after ${READY_TIMEOUT_MS} ms; see the logs in ${dir}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function hasExited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

function stopChild(child) {
  if (hasExited(child)) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
