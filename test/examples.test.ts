import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
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
});
