// Exporting wal.metrics() to Prometheus with prom-client (docs/OPERATIONS.md).
//
// A Wal in group mode takes commits from a few writers while an HTTP server
// serves /metrics on 127.0.0.1. Every gauge is read from one wal.metrics()
// call per scrape (prom-client's `collect`), so the figures of a scrape belong
// together. The example scrapes itself once, prints the segwal lines, and
// stops. prom-client is the user's choice, not a dependency of segwal:
//   npm install prom-client
//   npm run example:metrics
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import client from 'prom-client';
import { Wal } from 'segwal';

/** Registers the gauges of one Wal on `registry`; every scrape reads wal.metrics() once. */
function exportWalMetrics(wal, registry) {
  const gauge = (name, help, labelNames = []) => new client.Gauge({ name: `segwal_${name}`, help, labelNames, registers: [registry] });
  // Registered first, so that it runs before the other gauges are read: a scrape reads the Wal once.
  new client.Gauge({
    name: 'segwal_scrapes',
    help: 'Scrapes of this Wal',
    registers: [registry],
    collect() {
      this.inc();
      const m = wal.metrics();
      commits.set(m.commits);
      bytes.set(m.bytesWritten);
      rotations.set(m.rotations);
      truncations.set(m.truncations);
      deleted.set(m.segmentsDeleted);
      sinceFsync.set(m.msSinceLastFsync === null ? Number.NaN : m.msSinceLastFsync / 1000);
      waiting.set({ for: 'write' }, m.waitingForWrite);
      waiting.set({ for: 'fsync' }, m.waitingForFsync);
      poisoned.set(m.poisoned ? 1 : 0);
      for (const [op, h] of [['write', m.writeLatencyUs], ['fsync', m.fsyncLatencyUs]]) {
        latency.set({ op, quantile: '0.5' }, h.p50 / 1e6);
        latency.set({ op, quantile: '0.99' }, h.p99 / 1e6);
        latency.set({ op, quantile: '1' }, h.max / 1e6);
      }
      for (const [per, unit, h] of [
        ['write', 'commits', m.commitsPerWrite],
        ['write', 'bytes', m.bytesPerWrite],
        ['fsync', 'commits', m.commitsPerFsync],
        ['fsync', 'bytes', m.bytesPerFsync],
      ]) {
        batch.set({ per, unit, quantile: '0.5' }, h.p50);
        batch.set({ per, unit, quantile: '0.99' }, h.p99);
      }
    },
  });
  const commits = gauge('commits', 'Transactions committed and written to the OS since open');
  const bytes = gauge('bytes_written', 'Bytes of frames written since open');
  const rotations = gauge('rotations', 'Segments sealed and replaced since open');
  const truncations = gauge('truncations', 'Truncations that deleted segments since open');
  const deleted = gauge('segments_deleted', 'Segments deleted by truncation since open');
  const sinceFsync = gauge('seconds_since_last_fsync', 'Seconds since the last fsync returned (NaN before the first)');
  const waiting = gauge('commits_waiting', 'Commits waiting for their write or for their fsync', ['for']);
  const poisoned = gauge('poisoned', '1 once a failed write or fsync made the log refuse writes');
  const latency = gauge('io_latency_seconds', 'Latency of writes and fsyncs', ['op', 'quantile']);
  const batch = gauge('batch', 'Commits and bytes per write and per fsync', ['per', 'unit', 'quantile']);
}

const dir = mkdtempSync(path.join(tmpdir(), 'segwal-metrics-'));
const { wal } = await Wal.open({ dir, sync: { mode: 'group', intervalMs: 5 }, segmentBytes: 256 * 1024 });
const registry = new client.Registry();
exportWalMetrics(wal, registry);
const server = createServer(async (request, response) => {
  if (request.url !== '/metrics') return response.writeHead(404).end();
  response.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics());
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${server.address().port}/metrics`;

try {
  // Four writers, 2,000 commits each, durable ones among them.
  await Promise.all(
    Array.from({ length: 4 }, async (_, writer) => {
      for (let i = 0; i < 2000; i++) {
        await wal.commit([Buffer.from(JSON.stringify({ writer, i }))], { durable: i % 100 === 0 });
      }
    }),
  );
  await wal.sync();
  const text = await (await fetch(url)).text();
  console.log(`scraped ${url}`);
  for (const line of text.split('\n')) {
    if (/^segwal_(commits |commits_waiting|bytes_written|rotations|poisoned|io_latency_seconds\{op="fsync",quantile="0.99"\}|batch\{per="fsync",unit="commits",quantile="0.5"\})/.test(line)) {
      console.log(line);
    }
  }
} finally {
  server.close();
  await wal.close();
  rmSync(dir, { recursive: true, force: true });
}
