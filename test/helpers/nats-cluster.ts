import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach } from 'vitest';

/*
 * A real NATS JetStream cluster for tests: `nodes` nats-server processes on
 * 127.0.0.1, each with its own store directory, routed to one another. It is
 * started from Debian's nats-server (docs/REPLICATION.md); nothing is mocked.
 * Every address is on the loopback interface, so no traffic leaves the machine.
 */

export interface NatsCluster {
  /** Client URLs, one per node: `servers[i]` is node `i` (server name `n${i + 1}`). */
  readonly servers: string[];
  /** Signals node `i` by pid and waits for it to exit. */
  stop(index: number, signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /**
   * Starts node `i` again on its ports; `dropReplicas` first deletes the stream and consumer replicas it
   * held (see `dropReplicas`). Waits until the cluster is whole, for up to `formTimeoutMs` (default
   * WAIT_TIMEOUT_MS).
   */
  start(index: number, options?: { dropReplicas?: boolean; formTimeoutMs?: number }): Promise<void>;
  /** The JetStream meta leader's node index, when every running node names the same running one. */
  metaLeader(): Promise<number | undefined>;
  /** The node that leads `stream` now, or undefined while no single running node does. */
  leaderOf(stream: string): Promise<number | undefined>;
  /** The node that leads `stream` when it reports every other running node a current replica; undefined otherwise. */
  leaderOfWholeStream(stream: string): Promise<number | undefined>;
  /** Waits until the leader of `stream` reports every other running node current and each one's own store holds what the leader's holds (a stream on every node). */
  waitForReplicas(stream: string): Promise<void>;
  /** What node `i`'s own store holds of `stream`, or undefined when it holds no replica of it. */
  storedOn(index: number, stream: string): Promise<{ messages: number; last_seq: number } | undefined>;
  /** The last lines of every node's log, to print when a test fails. */
  logTails(lines?: number): string;
  /** Stops every node by pid and removes the temp dir. A second call does nothing. */
  close(): Promise<void>;
}

const CLUSTER_NAME = 'segwal-test';
/** Bounds each wait of the helper: a cold 3-node cluster forms in about 0.5 s here, a replica catches up in seconds. */
const WAIT_TIMEOUT_MS = 20_000;
const POLL_MS = 50;
/** How long a SIGTERM'd server gets to exit before it is killed. */
const EXIT_TIMEOUT_MS = 10_000;
/** Another process can take a port between our probe and the server's bind; then all ports are chosen again. */
const PORT_ATTEMPTS = 3;

interface Node {
  name: string;
  dir: string;
  storeDir: string;
  configFile: string;
  logFile: string;
  clientPort: number;
  clusterPort: number;
  httpPort: number;
  process: ChildProcess | null;
  exited: Promise<void>;
}

/** Servers still running and temp dirs still there: a test process that exits without closing its clusters kills and removes them. */
const running = new Set<ChildProcess>();
const roots = new Set<string>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
  for (const root of roots) removeRoot(root);
});

function removeRoot(root: string): void {
  fs.rmSync(root, { recursive: true, force: true });
  roots.delete(root);
}

export async function startCluster(options: { nodes: number }): Promise<NatsCluster> {
  if (!Number.isInteger(options.nodes) || options.nodes < 3) {
    throw new Error(`startCluster: an R3 JetStream cluster needs at least 3 nodes, got ${options.nodes}`);
  }
  const binary = findOnPath('nats-server');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'segwal-nats-'));
  roots.add(root);
  let nodes: Node[] = [];
  try {
    for (let attempt = 1; ; attempt++) {
      nodes = await layOutNodes(root, options.nodes);
      for (const node of nodes) launch(binary, node);
      try {
        await waitUntilFormed(nodes);
        break;
      } catch (error) {
        await Promise.all(nodes.map((node) => signalAndWait(node, 'SIGKILL')));
        if (attempt >= PORT_ATTEMPTS || !nodes.some((node) => logOf(node).includes('address already in use'))) throw error;
      }
    }
  } catch (error) {
    removeRoot(root);
    throw error;
  }

  let closed = false;
  const nodeAt = (index: number): Node => {
    const node = nodes[index];
    if (node === undefined) throw new Error(`no node ${index} in a cluster of ${nodes.length}`);
    return node;
  };

  return {
    servers: nodes.map((node) => `nats://127.0.0.1:${node.clientPort}`),
    async stop(index, signal = 'SIGTERM') {
      const node = nodeAt(index);
      if (node.process === null) throw new Error(`${node.name} is not running`);
      await signalAndWait(node, signal);
    },
    async start(index, { dropReplicas: drop = false, formTimeoutMs = WAIT_TIMEOUT_MS } = {}) {
      const node = nodeAt(index);
      if (node.process !== null) throw new Error(`${node.name} is already running`);
      if (drop) dropReplicas(node.storeDir);
      launch(binary, node);
      await waitUntilFormed(nodes, formTimeoutMs);
    },
    async metaLeader() {
      const { leader } = await metaView(nodes);
      const index = nodes.findIndex((node) => node.name === leader);
      return index < 0 ? undefined : index;
    },
    async leaderOf(stream) {
      return leaderIn(nodes, await streamDetails(nodes, stream));
    },
    async leaderOfWholeStream(stream) {
      const details = await streamDetails(nodes, stream);
      const leader = leaderIn(nodes, details);
      return leader !== undefined && nodes.every((node, index) => node.process === null || isCurrentReplica(details, leader, node, index)) ? leader : undefined;
    },
    async waitForReplicas(stream) {
      await pollUntil(
        async () => {
          const details = await streamDetails(nodes, stream);
          const leader = leaderIn(nodes, details);
          const leaderState = leader === undefined ? undefined : details[leader]?.state;
          if (leader === undefined || leaderState === undefined) return false;
          // The leader's word and each node's own store: 2.9.10 can report a replica current a
          // moment before its store holds the last messages, and the other way round.
          return nodes.every((node, index) => {
            if (node.process === null || index === leader) return true;
            const state = details[index]?.state;
            return isCurrentReplica(details, leader, node, index) && state?.messages === leaderState.messages && state.last_seq === leaderState.last_seq;
          });
        },
        `the replicas of stream ${stream} to catch up`,
        { detail: () => tails(nodes) },
      );
    },
    async storedOn(index, stream) {
      return (await streamDetailOn(nodeAt(index), stream))?.state;
    },
    logTails(lines = 40) {
      return tails(nodes, lines);
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(nodes.map((node) => (node.process === null ? undefined : signalAndWait(node, 'SIGKILL'))));
      removeRoot(root);
    },
  };
}

/**
 * Registers a cluster for the enclosing test file (or describe): started
 * before its tests, closed after them even when they fail, and the tails of
 * the server logs printed for each failing test. Returns an accessor.
 */
export function useCluster(options: { nodes: number }): () => NatsCluster {
  let cluster: NatsCluster | undefined;
  beforeAll(async () => {
    cluster = await startCluster(options);
  });
  afterAll(async () => {
    await cluster?.close();
  });
  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      if (cluster !== undefined) console.error(`nats-server logs:\n${cluster.logTails()}`);
    });
  });
  return () => {
    if (cluster === undefined) throw new Error('the cluster is not started (useCluster runs in beforeAll)');
    return cluster;
  };
}

function findOnPath(command: string): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, command);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new Error(
    'nats-server not found: install Debian\'s package (apt-get install -y nats-server); .ci/run does this. ' +
      'The JetStream tests need a real 3-node cluster and are not skipped without it.',
  );
}

async function layOutNodes(root: string, count: number): Promise<Node[]> {
  const ports = await freePorts(count * 3);
  const nodes: Node[] = [];
  for (let i = 0; i < count; i++) {
    const name = `n${i + 1}`;
    const dir = path.join(root, name);
    fs.rmSync(dir, { recursive: true, force: true }); // what a start that lost a port race left
    fs.mkdirSync(dir);
    nodes.push({
      name,
      dir,
      storeDir: path.join(dir, 'store'),
      configFile: path.join(dir, 'nats.conf'),
      logFile: path.join(dir, 'nats.log'),
      clientPort: ports[3 * i] as number,
      clusterPort: ports[3 * i + 1] as number,
      httpPort: ports[3 * i + 2] as number,
      process: null,
      exited: Promise.resolve(),
    });
  }
  for (const node of nodes) {
    const routes = nodes.filter((other) => other !== node).map((other) => `"nats-route://127.0.0.1:${other.clusterPort}"`);
    fs.writeFileSync(
      node.configFile,
      [
        `server_name: ${node.name}`,
        'host: "127.0.0.1"',
        `port: ${node.clientPort}`,
        `http: "127.0.0.1:${node.httpPort}"`,
        `jetstream { store_dir: ${JSON.stringify(node.storeDir)} }`,
        'cluster {',
        `  name: ${CLUSTER_NAME}`,
        `  listen: "127.0.0.1:${node.clusterPort}"`,
        `  routes: [ ${routes.join(', ')} ]`,
        '}',
        '',
      ].join('\n'),
    );
  }
  return nodes;
}

/** Ports the OS says are free now: all held open together so none repeats, then released for the servers. */
async function freePorts(count: number): Promise<number[]> {
  const listeners = await Promise.all(
    Array.from({ length: count }, () => {
      const server = net.createServer();
      return new Promise<net.Server>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve(server));
      });
    }),
  );
  const ports = listeners.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(listeners.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

function launch(binary: string, node: Node): void {
  // Appending keeps the log of a node's earlier lives, which is what a failure after a restart needs.
  const log = fs.openSync(node.logFile, 'a');
  const child = spawn(binary, ['-c', node.configFile], { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  node.process = child;
  running.add(child);
  node.exited = new Promise((resolve) => {
    child.once('exit', () => {
      running.delete(child);
      if (node.process === child) node.process = null;
      resolve();
    });
  });
}

async function signalAndWait(node: Node, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  const child = node.process;
  if (child === null) return;
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_TIMEOUT_MS);
  await node.exited;
  clearTimeout(timer);
}

/**
 * Deletes the stream and consumer replicas a node held in `storeDir`, their
 * messages and their Raft logs, as an operator does with a node whose stores
 * 2.9.10 may have left behind after a kill -9 (nats-server issues 4174 and
 * 8319): each stream and consumer then copies itself to the node again from
 * its leader. The meta group's log (`jetstream/$SYS/_js_/_meta_`) stays.
 * 2.9.10 cannot always catch up an empty meta follower: when the meta leader
 * is a node that was itself rebuilt from a snapshot, the follower asks for an
 * entry the leader's log no longer holds ("Request from follower for index
 * [7] possibly beyond our last index [10]"), and the leader never reports it
 * current. Killing the meta leader and bringing it back with an empty store
 * did that in 3 rounds of 15 here; keeping the meta log, in none of 42
 * (docs/REPLICATION.md).
 */
export function dropReplicas(storeDir: string): void {
  let dir = storeDir;
  for (const kept of ['jetstream', '$SYS', '_js_', '_meta_']) {
    if (!fs.existsSync(dir)) return;
    for (const entry of fs.readdirSync(dir)) {
      if (entry !== kept) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
    }
    dir = path.join(dir, kept);
  }
}

interface StreamDetail {
  name: string;
  state?: { messages: number; last_seq: number };
  cluster?: { leader?: string; replicas?: { name: string; current: boolean }[] };
}

interface Jsz {
  meta_cluster?: { leader?: string; replicas?: { name: string; current: boolean; offline?: boolean }[] };
  account_details?: { stream_detail?: StreamDetail[] }[];
}

/** `stream` as node `node` holds it: its own store and its view of the leader. */
async function streamDetailOn(node: Node, stream: string): Promise<StreamDetail | undefined> {
  const jsz = await monitor<Jsz>(node, '/jsz?accounts=true&streams=true');
  return jsz?.account_details?.flatMap((account) => account.stream_detail ?? []).find((s) => s.name === stream);
}

/** `stream` as each node holds it; undefined for a node that is down or holds no replica. */
async function streamDetails(nodes: Node[], stream: string): Promise<(StreamDetail | undefined)[]> {
  return Promise.all(nodes.map((node) => (node.process === null ? undefined : streamDetailOn(node, stream))));
}

/** Whether the leader's view of the stream reports `node` (at `index`) a current replica; the leader itself always is. */
function isCurrentReplica(details: (StreamDetail | undefined)[], leader: number, node: Node, index: number): boolean {
  if (index === leader) return true;
  return details[leader]?.cluster?.replicas?.some((replica) => replica.name === node.name && replica.current) === true;
}

/** The node that leads the stream, or undefined while not exactly one running node claims it. */
function leaderIn(nodes: Node[], details: (StreamDetail | undefined)[]): number | undefined {
  // Only a node's word about itself counts: a follower keeps naming a dead leader for a while.
  const claims = details.flatMap((detail, index) => (detail?.cluster?.leader === nodes[index]?.name ? [index] : []));
  return claims.length === 1 ? claims[0] : undefined;
}

async function monitor<T>(node: Node, endpoint: string): Promise<T | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${node.httpPort}${endpoint}`);
    return response.ok ? ((await response.json()) as T) : undefined;
  } catch {
    return undefined; // not listening yet, or going down
  }
}

/**
 * The meta group as the running nodes see it: the leader every one of them
 * names (undefined while they differ or name none running), and the running
 * nodes that leader does not report current.
 */
async function metaView(nodes: Node[]): Promise<{ leader: string | undefined; behind: string[] }> {
  const live = nodes.filter((node) => node.process !== null);
  const views = await Promise.all(live.map((node) => monitor<Jsz>(node, '/jsz')));
  const leader = views[0]?.meta_cluster?.leader;
  const leaderIndex = live.findIndex((node) => node.name === leader);
  if (leaderIndex < 0 || !views.every((view) => view?.meta_cluster?.leader === leader)) return { leader: undefined, behind: [] };
  const replicas = views[leaderIndex]?.meta_cluster?.replicas ?? [];
  const behind = live.filter(
    (node) => node.name !== leader && !replicas.some((r) => r.name === node.name && r.current && r.offline !== true),
  );
  return { leader, behind: behind.map((node) => node.name) };
}

/**
 * Waits until every running node names the same running meta leader and that
 * leader reports every other running node current. Fails at once when a node
 * running at the call exits. The running nodes are counted at each look, not
 * at the call: nodes started together (a whole cluster brought back) each
 * call this right after their own launch, before the others are launched.
 */
async function waitUntilFormed(nodes: Node[], timeoutMs = WAIT_TIMEOUT_MS): Promise<void> {
  const started = nodes.filter((node) => node.process !== null);
  await pollUntil(
    async () => {
      const dead = started.filter((node) => node.process === null);
      if (dead.length > 0) {
        throw new Error(`nats-server ${dead.map((node) => node.name).join(', ')} exited while the cluster formed:\n${tails(dead)}`);
      }
      const { leader, behind } = await metaView(nodes);
      return leader !== undefined && behind.length === 0;
    },
    'the JetStream cluster to form',
    { timeoutMs, detail: () => tails(nodes.filter((node) => node.process !== null)) },
  );
}

/**
 * Polls `done` every POLL_MS until it holds. After `timeoutMs` (default
 * WAIT_TIMEOUT_MS) it throws, naming `what` and adding `detail()`, such as
 * the server logs.
 */
export async function pollUntil(
  done: () => boolean | Promise<boolean>,
  what: string,
  { timeoutMs = WAIT_TIMEOUT_MS, detail }: { timeoutMs?: number; detail?: () => string } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail === undefined ? '' : `:\n${detail()}`}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function logOf(node: Node): string {
  try {
    return fs.readFileSync(node.logFile, 'utf8');
  } catch {
    return '';
  }
}

function tails(nodes: Node[], lines = 20): string {
  return nodes
    .map((node) => `--- ${node.name} (${node.logFile}) ---\n${logOf(node).split('\n').slice(-lines - 1).join('\n')}`)
    .join('\n');
}
