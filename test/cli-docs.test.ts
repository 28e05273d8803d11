import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Wal } from '../src/index.js';
import { ROOT, runNode } from './helpers/child.js';
import { CLI_BIN } from './helpers/cli.js';
import { segmentNames } from './helpers/temp-dir.js';

/*
 * The CLI samples in README.md and docs/CLI.md are real output. Every plain
 * code block that starts with `$ segwal` is run: each `$ segwal …` line
 * against the log it names (built below as docs/CLI.md describes it), from a
 * directory standing in for /tmp, and what it prints must be the lines under
 * it, byte for byte. A blank line before the next `$` only separates samples.
 * JSON samples are folded in the docs to save space, so those compare as
 * parsed JSON.
 */

interface Sample {
  doc: string;
  args: string[];
  expected: string;
}

function samplesOf(doc: string): Sample[] {
  const text = fs.readFileSync(path.join(ROOT, doc), 'utf8');
  const samples: Sample[] = [];
  for (const [, block] of text.matchAll(/^```\n(\$ segwal[^]*?)^```$/gm)) {
    const lines = block!.split('\n');
    for (let at = 0; at < lines.length; ) {
      const command = lines[at]!.replace(/^\$ segwal /, '').replace(/\s+#.*$/, '');
      let end = at + 1;
      while (end < lines.length && !lines[end]!.startsWith('$ segwal ')) end++;
      const output = lines.slice(at + 1, end);
      while (output.at(-1) === '') output.pop();
      samples.push({ doc, args: command.split(/\s+/), expected: output.map((line) => `${line}\n`).join('') });
      at = end;
    }
  }
  return samples;
}

/** The `demo` log of the samples: 20 commits, one transaction aborted, one left open, a Checkpoint marker, segmentBytes 1024. */
async function demoLog(dir: string): Promise<void> {
  const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 1024, sync: 'none', logId: '5e9a1c0d7b2f4e6a8c3d1f0b9e7a5c2d' });
  for (let i = 0; i < 20; i++) await wal.commit([Buffer.from(JSON.stringify({ op: 'put', key: `k${i}`, value: i }))]);
  const aborted = wal.begin();
  aborted.append(Buffer.from('draft'));
  aborted.abort();
  wal.begin().append(Buffer.from([0xff, 0x00, 0xfe]));
  wal.checkpointMarker(12);
  await wal.flush();
  await wal.close();
}

/** `demo-trunc`: checkpoint() truncated the segment holding an older transaction's TxBegin, while two of its records were kept. */
async function truncatedLog(dir: string): Promise<void> {
  const { wal } = await Wal.open({ dir, io: 'js', segmentBytes: 1024, sync: 'none', logId: '0f1e2d3c4b5a69788796a5b4c3d2e1f0' });
  const early = wal.begin();
  early.append(Buffer.from('begun early'));
  for (let i = 0; i < 20; i++) await wal.commit([Buffer.alloc(120, i)]);
  early.append(Buffer.from('still going'));
  await early.commit();
  await wal.commit([Buffer.alloc(120, 99)]);
  await wal.checkpoint(() => undefined);
  await wal.close();
}

/** Writes `bytes` over `file` at `offset`. */
function overwrite(file: string, offset: number, bytes: number[]): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, Buffer.from(bytes), 0, bytes.length, offset);
  } finally {
    fs.closeSync(fd);
  }
}

// Every sample reads the same logs: made once for the file (tempDir's are removed after each test).
let tmp: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'segwal-docs-'));
  const demo = path.join(tmp, 'demo');
  await demoLog(demo);
  fs.cpSync(demo, path.join(tmp, 'data/wal'), { recursive: true });
  // One byte flipped in the first segment's second frame (offset 98).
  fs.cpSync(demo, path.join(tmp, 'demo-bad'), { recursive: true });
  overwrite(path.join(tmp, 'demo-bad', segmentNames(demo)[0]!), 98 + 10, [0x55]);
  // Six stray bytes after the last frame of the active segment (offset 530): a frame's length and kind, and one more byte.
  fs.cpSync(demo, path.join(tmp, 'demo-torn'), { recursive: true });
  overwrite(path.join(tmp, 'demo-torn', segmentNames(demo).at(-1)!), 530, [25, 0, 0, 0, 1, 7]);
  await truncatedLog(path.join(tmp, 'demo-trunc'));
  // A directory that is not a log.
  fs.mkdirSync(path.join(tmp, 'photos'));
  fs.writeFileSync(path.join(tmp, 'photos', 'holiday.jpg'), 'not a segment');
});

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('the CLI samples in the docs are real output', () => {
  const samples = [...samplesOf('README.md'), ...samplesOf('docs/CLI.md')];

  it('finds the samples', () => {
    expect(samples.filter((sample) => sample.doc === 'README.md').length).toBeGreaterThanOrEqual(4);
    expect(samples.filter((sample) => sample.doc === 'docs/CLI.md').length).toBeGreaterThanOrEqual(10);
  });

  it.each(samples.map((sample) => [`${sample.doc}: segwal ${sample.args.join(' ')}`, sample] as const))('%s', async (_title, sample) => {
    const run = await runNode([CLI_BIN, ...sample.args], tmp);
    const printed = (run.stdout + run.stderr).replaceAll(`${tmp}/`, '/tmp/');
    if (sample.args.includes('--json')) expect(JSON.parse(printed)).toEqual(JSON.parse(sample.expected));
    else expect(printed).toBe(sample.expected);
  });
});
