import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BATCH_COUNT_BYTES, BATCH_ENTRY_OVERHEAD, FRAME_OVERHEAD } from '../src/format/constants.js';
import { ROOT, runNode } from './helpers/child.js';

/* The examples run as a user runs them (`npm run example:…`), against the dist/ the global setup built. */

describe('examples', () => {
  it('replication.mjs: a local cluster, ship, follow with the lag printed, replica == primary, then every server stopped and the temp dir removed', async () => {
    const run = await runNode([path.join(ROOT, 'examples/replication.mjs')], ROOT);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    const started = /^started 3 nats-server processes \(pids (\d+), (\d+), (\d+)\) on (nats:\/\/127\.0\.0\.1:\d+(, )?){3}, in (\S+)$/.exec(lines[0]!);
    expect(started, lines[0]).not.toBeNull();
    const pids = started!.slice(1, 4).map(Number);
    const temp = started![6]!;

    const progress = lines.filter((line) => line.startsWith('wrote '));
    const shape = /^wrote +(\d+) transactions \| stream acknowledged commit LSN (\d+) \| replica applied commit LSN (\d+): (\d+) behind, lag (\d+) ms$/;
    // Printed as it goes (every 250 ms over about three seconds of writing), then once caught up.
    expect(progress.length).toBeGreaterThan(2);
    for (const line of progress) expect(line).toMatch(shape);
    const [, written, acknowledged, applied, behind, lag] = shape.exec(progress.at(-1)!)!;
    expect({ behind, lag, applied }).toEqual({ behind: '0', lag: '0', applied: acknowledged });
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^replica == primary: ${written} transactions, commit LSNs \\d+\\.\\.${acknowledged}, the same LSNs and events$`)));

    expect(lines.at(-1)).toBe(`stopped 3 nats-server processes (pids ${pids.join(', ')}), removed ${temp}`);
    for (const pid of pids) expect(() => process.kill(pid, 0), `nats-server pid ${pid}`).toThrow(expect.objectContaining({ code: 'ESRCH' }));
    expect(fs.existsSync(temp)).toBe(false);
  });

  it('metrics-prometheus.mjs: the scrape carries wal.metrics() (the commits made, the bytes of their frames, nothing waiting, not poisoned), then everything is closed', async () => {
    const run = await runNode([path.join(ROOT, 'examples/metrics-prometheus.mjs')], ROOT);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^scraped http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const value = (name: string) => Number(lines.find((line) => line.startsWith(`${name} `))?.split(' ')[1]);
    // What the example committed: 4 writers × 2,000 one-event Commit records of JSON.
    let bytes = 0;
    for (let writer = 0; writer < 4; writer++) {
      for (let i = 0; i < 2000; i++) bytes += FRAME_OVERHEAD + BATCH_COUNT_BYTES + BATCH_ENTRY_OVERHEAD + JSON.stringify({ writer, i }).length;
    }
    expect(value('segwal_commits')).toBe(8000);
    expect(value('segwal_bytes_written')).toBe(bytes);
    expect(value('segwal_commits_waiting{for="write"}')).toBe(0);
    expect(value('segwal_commits_waiting{for="fsync"}')).toBe(0);
    expect(value('segwal_poisoned')).toBe(0);
    expect(value('segwal_io_latency_seconds{op="fsync",quantile="0.99"}')).toBeGreaterThan(0);
    expect(value('segwal_batch{per="fsync",unit="commits",quantile="0.5"}')).toBeGreaterThanOrEqual(1);
  });
});
