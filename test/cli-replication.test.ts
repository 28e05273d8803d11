import { afterEach, describe, expect, it } from 'vitest';
import { Wal, readTransactions } from '../src/index.js';
import { ship } from '../src/jetstream/index.js';
import { runCli as segwal, startCli, type RunningCli } from './helpers/cli.js';
import { useConnection } from './helpers/jetstream.js';
import { useCluster } from './helpers/nats-cluster.js';
import { readShipped, type ShippedTx } from './helpers/shipped.js';
import { tempDir } from './helpers/temp-dir.js';

/*
 * `segwal ship`, `follow` and `restore` as an operator runs them: the real
 * bin in a process of its own, against a real three-node cluster, stopped
 * with the signals a service manager sends.
 */

const cluster = useCluster({ nodes: 3 });
const connection = useConnection(cluster);
const servers = () => cluster().servers.join(',');

const started: RunningCli[] = [];
afterEach(() => {
  // A test that failed before stopping its command must not leave it running.
  for (const run of started.splice(0)) if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
});

function start(...args: string[]): RunningCli {
  const run = startCli(...args);
  started.push(run);
  return run;
}

/** The status objects a command started with --json printed on stderr, oldest first. */
function statuses(run: RunningCli): Array<Record<string, unknown>> {
  return run
    .stderr()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function latest(run: RunningCli, field: string): unknown {
  return statuses(run).at(-1)?.[field];
}

async function committed(dir: string): Promise<ShippedTx[]> {
  const all: ShippedTx[] = [];
  for await (const tx of readTransactions(dir)) all.push({ beginLsn: tx.beginLsn, commitLsn: tx.commitLsn, events: tx.events.map(String) });
  return all;
}

/** `count` commits of a few events each; the last commit LSN. */
async function commitSome(wal: Wal<Uint8Array, Buffer>, count: number, label: string): Promise<number> {
  let last = 0;
  for (let i = 0; i < count; i++) last = (await wal.commit([Buffer.from(`${label} ${i}`), Buffer.from('e'.repeat(i % 50))]))!.commitLsn;
  return last;
}

/** A log shipped in this process to `stream`: `count` commits, all acknowledged. */
async function shippedLog(stream: string, count: number): Promise<{ dir: string; logId: string; lastCommitLsn: number }> {
  const dir = tempDir();
  const { wal } = await Wal.open({ dir, sync: 'per-commit' });
  const shipper = await ship(wal, { servers: cluster().servers, stream });
  const lastCommitLsn = await commitSome(wal, count, stream);
  await shipper.acknowledged(lastCommitLsn);
  await shipper.close();
  await wal.close();
  return { dir, logId: wal.logId, lastCommitLsn };
}

describe('segwal ship', () => {
  it('ships from a process of its own what a Wal commits meanwhile, exactly once; SIGTERM closes it cleanly (exit 0)', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, sync: 'per-commit', segmentBytes: 64 * 1024 });
    await commitSome(wal, 20, 'before the shipper');
    const run = start('ship', dir, '--servers', servers(), '--stream', 'cli-ship', '--status-ms', '50', '--json');
    await expect.poll(() => latest(run, 'state'), { timeout: 20_000 }).toBe('shipping');
    const last = await commitSome(wal, 300, 'while shipping');
    await expect.poll(() => latest(run, 'acknowledgedCommitLsn'), { timeout: 20_000 }).toBe(last);
    run.child.kill('SIGTERM');
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(statuses(run).at(-1)).toMatchObject({ state: 'closed', logId: wal.logId, acknowledgedCommitLsn: last, transactionsBehind: 0, lastError: null });
    expect(run.stdout()).toBe('');
    await wal.close();
    const shipped = await readShipped(connection(), 'cli-ship');
    expect(shipped.logIds).toEqual(new Set([wal.logId]));
    expect(shipped.transactions).toEqual(await committed(dir));
    expect(shipped.transactions).toHaveLength(320);
  });

  it('prints its status as text lines on stderr; SIGINT closes it like SIGTERM, and a new one goes on where the stream stands', async () => {
    const dir = tempDir();
    const { wal } = await Wal.open({ dir, sync: 'per-commit' });
    const first = await commitSome(wal, 10, 'first');
    const run = start('ship', dir, '--servers', servers(), '--stream', 'cli-ship-text', '--status-ms', '50');
    await expect.poll(() => run.stderr(), { timeout: 20_000 }).toMatch(new RegExp(`^shipping: acknowledged commit LSN ${first} \\(stream seq \\d+\\); 0 transactions behind \\(0 bytes, `, 'm'));
    run.child.kill('SIGINT');
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.stderr().trimEnd().split('\n').at(-1)).toMatch(new RegExp(`^closed: acknowledged commit LSN ${first} \\(stream seq \\d+\\); 0 transactions behind`));

    const second = await commitSome(wal, 10, 'second');
    const again = start('ship', dir, '--servers', servers(), '--stream', 'cli-ship-text', '--status-ms', '50');
    await expect.poll(() => again.stderr(), { timeout: 20_000 }).toMatch(new RegExp(`^shipping: acknowledged commit LSN ${second} \\(stream seq \\d+\\)`, 'm'));
    again.child.kill('SIGTERM');
    expect((await again.exited).code).toBe(0);
    await wal.close();
    expect((await readShipped(connection(), 'cli-ship-text')).transactions).toEqual(await committed(dir));
  });

  it('stops with exit 1 and the error in one line when the stream carries another log on its subject', async () => {
    const { logId } = await shippedLog('cli-ship-one', 3);
    const other = tempDir();
    const { wal } = await Wal.open({ dir: other, sync: 'per-commit' });
    await commitSome(wal, 3, 'other');
    await wal.close();
    const subject = `segwal.${logId}`;
    const run = await segwal('ship', other, '--servers', servers(), '--stream', 'cli-ship-one', '--subject', subject, '--status-ms', '0');
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    const lines = run.stderr.trimEnd().split('\n');
    // The last status, then the failure.
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^failed: acknowledged commit LSN 0 /);
    expect(lines[1]).toMatch(new RegExp(`^segwal ship: WAL_REPLICATION_CONFLICT: subject ${subject} of stream cli-ship-one carries log [0-9a-f]{32}, not this log`));
  });
});

describe('segwal follow', () => {
  it('keeps a replica up to date while the primary commits; after SIGTERM (exit 0) the replica reads as the primary', async () => {
    const primary = tempDir();
    const { wal } = await Wal.open({ dir: primary, sync: 'per-commit', segmentBytes: 64 * 1024 });
    const shipper = await ship(wal, { servers: cluster().servers, stream: 'cli-follow' });
    // The stream must hold the log's first message: that is where a follower learns which log it carries.
    await shipper.acknowledged(await commitSome(wal, 20, 'before the follower'));
    const replica = tempDir();
    const run = start('follow', replica, '--servers', servers(), '--stream', 'cli-follow', '--status-ms', '50', '--json');
    await expect.poll(() => latest(run, 'state'), { timeout: 20_000 }).toBe('following');
    const last = await commitSome(wal, 300, 'while following');
    await shipper.acknowledged(last);
    await expect.poll(() => latest(run, 'appliedCommitLsn'), { timeout: 20_000 }).toBe(last);
    run.child.kill('SIGTERM');
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(statuses(run).at(-1)).toMatchObject({ state: 'stopped', logId: wal.logId, appliedCommitLsn: last, lastError: null });
    await shipper.close();
    await wal.close();
    const expected = await committed(primary);
    expect(expected).toHaveLength(320);
    expect(await committed(replica)).toEqual(expected);
  });
});

describe('segwal restore', () => {
  it('rebuilds a log up to --until-commit-lsn and no further, then to the end; a stream of another log is refused (exit 1)', async () => {
    const { dir, lastCommitLsn } = await shippedLog('cli-restore', 40);
    const primary = await committed(dir);
    const middle = primary[24]!.commitLsn;
    const replica = tempDir();
    const until = await segwal('restore', replica, '--servers', servers(), '--stream', 'cli-restore', '--until-commit-lsn', String(middle));
    expect(until).toMatchObject({ code: 0, stderr: '' });
    const [, seq] = new RegExp(`^restored ${replica} up to commit LSN ${middle} \\(stream seq (\\d+)\\)\n$`).exec(until.stdout) ?? [];
    expect(seq, until.stdout).toBeDefined();
    expect(await committed(replica)).toEqual(primary.filter((tx) => tx.commitLsn <= middle));
    // The stream sequence it names is the message that carried that commit, as the replica's last record says.
    const records = (await segwal('dump', replica, '--payload', 'none')).stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(records.at(-1)).toMatchObject({ lsn: middle, streamSeq: Number(seq) });

    const rest = await segwal('restore', replica, '--servers', servers(), '--stream', 'cli-restore', '--json');
    expect(rest).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(rest.stdout)).toMatchObject({ state: 'stopped', appliedCommitLsn: lastCommitLsn, lastError: null });
    expect(await committed(replica)).toEqual(primary);

    await shippedLog('cli-restore-other', 3);
    const refused = await segwal('restore', replica, '--servers', servers(), '--stream', 'cli-restore-other');
    expect(refused).toMatchObject({ code: 1, stdout: '' });
    expect(refused.stderr).toMatch(/^segwal restore: WAL_REPLICATION_CONFLICT: stream cli-restore-other carries log [0-9a-f]{32}; [^\n]+\n$/);
    expect(await committed(replica)).toEqual(primary);
  });
});

describe('usage', () => {
  it('--help works for each; a bad or missing flag is one line naming it and pointing to the command\'s --help (exit 2), before anything connects', async () => {
    const log = tempDir();
    await (await Wal.open({ dir: log })).wal.close();
    const url = cluster().servers[0]!;
    const cases: Array<[string[], string]> = [
      [['ship', log], 'segwal ship: --servers is required (see segwal ship --help)'],
      [['ship', log, '--servers', url], 'segwal ship: --stream is required (see segwal ship --help)'],
      [['ship', log, '--servers', `${url},,${url}`, '--stream', 's'], `segwal ship: --servers takes URL[,URL…], not ${url},,${url} (see segwal ship --help)`],
      [['ship', log, '--servers', url, '--stream', 's', '--window', 'ten'], 'segwal ship: --window takes an integer from 1, not ten (see segwal ship --help)'],
      // The range is the library's: said with the flag.
      [['ship', log, '--servers', url, '--stream', 's', '--window', '5000'], 'segwal ship: --window: expected a number <= 1024, got 5000 (see segwal ship --help)'],
      [['ship', log, '--servers', url, '--stream', 's', '--max-message-bytes', '100'], 'segwal ship: --max-message-bytes: expected a number >= 4096, got 100 (see segwal ship --help)'],
      [['ship', log, '--servers', url, '--stream', 's', '--status-ms', 'soon'], 'segwal ship: --status-ms takes an integer from 0, not soon (see segwal ship --help)'],
      [['ship', log, '--servers', url, '--stream', 's', '--until-commit-lsn', '5'], 'segwal ship: unknown option --until-commit-lsn (see segwal ship --help)'],
      [['follow', tempDir(), '--servers', url, '--stream'], 'segwal follow: --stream needs a value (see segwal follow --help)'],
      [['follow', tempDir(), '--servers', url, '--stream', 's', '--window', '8'], 'segwal follow: unknown option --window (see segwal follow --help)'],
      [['restore', tempDir(), '--servers', url, '--stream', 's', '--until-commit-lsn', '0'], 'segwal restore: --until-commit-lsn takes an LSN (an integer from 1 to 2^53-1), not 0 (see segwal restore --help)'],
      [['restore', '--servers', url, '--stream', 's'], 'segwal restore: expected one log directory, got none (see segwal restore --help)'],
    ];
    for (const [args, message] of cases) expect(await segwal(...args), args.join(' ')).toEqual({ code: 2, stdout: '', stderr: `${message}\n` });
    for (const command of ['ship', 'follow', 'restore']) {
      const help = await segwal(command, '--help');
      expect(help, command).toMatchObject({ code: 0, stderr: '' });
      expect(help.stdout, command).toContain(`segwal ${command} <dir> --servers URL[,URL…] --stream NAME`);
    }
    const notALog = tempDir();
    expect(await segwal('ship', notALog, '--servers', url, '--stream', 's')).toEqual({
      code: 2,
      stdout: '',
      stderr: `segwal ship: not a segwal log: ${notALog} holds no segment file and no .segwal.id\n`,
    });
  });

  it('a server that does not answer is exit 2, one line', async () => {
    const log = tempDir();
    await (await Wal.open({ dir: log })).wal.close();
    // Port 1 on the loopback: nothing listens there.
    const run = await segwal('ship', log, '--servers', 'nats://127.0.0.1:1', '--stream', 's');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^segwal ship: WAL_REPLICATION: connect to nats:\/\/127\.0\.0\.1:1 failed: [^\n]+\n$/);
  });
});
