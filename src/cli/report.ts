import type { WalError } from '../errors.js';

/** A text table with right-aligned columns after the first. */
export function formatTable(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  return `${all.map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')).join('\n')}\n`;
}

/** A count and its noun, singular for one: "1 segment", "2 segments". */
export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** A problem as machine output: the code and where (file, offset, LSN). */
export function describeDamage(error: WalError): { code: string; message: string; file: string | null; offset: number | null; lsn: number | null } {
  return { code: error.code, message: error.message, file: error.file ?? null, offset: error.offset ?? null, lsn: error.lsn ?? null };
}
