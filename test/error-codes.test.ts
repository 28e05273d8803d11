import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { WAL_ERROR_CODES } from '../src/index.js';
import { ROOT } from './helpers/child.js';

describe('docs/ERRORS.md', () => {
  it('has a row for every code segwal can throw', () => {
    const doc = fs.readFileSync(path.join(ROOT, 'docs/ERRORS.md'), 'utf8');
    const rows = new Set([...doc.matchAll(/^\| `(WAL_[A-Z_]+)` \|/gm)].map((match) => match[1]));
    expect(WAL_ERROR_CODES.filter((code) => !rows.has(code))).toEqual([]);
    expect([...rows].filter((code) => !(WAL_ERROR_CODES as readonly string[]).includes(code!))).toEqual([]);
  });
});
