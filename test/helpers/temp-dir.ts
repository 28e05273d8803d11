import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { SPARE_FILE_NAME } from '../../src/segment-files.js';

const made: string[] = [];

/** A fresh empty directory under the OS temp dir, removed after the test. */
export function tempDir(label = 'segwal'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${label}-`));
  made.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * Every file of `dir` (lock file included) with the SHA-256 of its bytes, to
 * prove nothing changed. The spare segment is left out: it holds no record and
 * is prepared in the background whenever the Wal likes.
 */
export function snapshotFiles(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  if (!fs.existsSync(dir)) return files;
  for (const name of fs.readdirSync(dir).sort()) {
    if (name === SPARE_FILE_NAME) continue;
    files.set(name, createHash('sha256').update(fs.readFileSync(path.join(dir, name))).digest('hex'));
  }
  return files;
}

export function segmentNames(dir: string): string[] {
  return fs.readdirSync(dir).filter((name) => /^\d{10}\.wal$/.test(name)).sort();
}
