import { expect } from 'vitest';
import { Wal, readTransactions, type ReadTransactionsOptions, type ResumePoint } from '../../src/index.js';
import type { ShippedTx } from './shipped.js';

/*
 * A copy of a log (a stream, a replica) against its source: what each holds
 * as {beginLsn, commitLsn, events}, and how the copy differs.
 */

/** The committed transactions of the log in `dir` in commit order, as a stream or a replica should hold them. */
export async function committed(dir: string, options: Pick<ReadTransactionsOptions, 'fromLsn' | 'scanFromLsn'> = {}): Promise<ShippedTx[]> {
  const all: ShippedTx[] = [];
  for await (const tx of readTransactions(dir, options)) all.push({ beginLsn: tx.beginLsn, commitLsn: tx.commitLsn, events: tx.events.map(String) });
  return all;
}

/**
 * The committed transactions of the log in `dir`, read as it grows: each
 * `catchUp()` reads on from the last transaction read (its resume point), so
 * a test that checks a copy after every fault reads the log once. For a log
 * nothing truncates under it.
 */
export class CommittedReader {
  readonly transactions: ShippedTx[] = [];
  private resume: ResumePoint | null = null;

  constructor(private readonly dir: string) {}

  async catchUp(): Promise<ShippedTx[]> {
    const added: ShippedTx[] = [];
    for await (const tx of readTransactions(this.dir, this.resume ?? { fromLsn: 1 })) {
      added.push({ beginLsn: tx.beginLsn, commitLsn: tx.commitLsn, events: tx.events.map(String) });
      this.resume = tx.resume;
    }
    // One by one: spreading a whole log's transactions overflows the call stack.
    for (const tx of added) this.transactions.push(tx);
    return added;
  }
}

/** What an application replays on opening `dir` (a replica opens as one). */
export async function replayed(dir: string, replica: boolean): Promise<ShippedTx[]> {
  const all: ShippedTx[] = [];
  const { wal } = await Wal.open({
    dir,
    replica,
    onReplay: (events, tx) => void all.push({ beginLsn: tx.beginLsn, commitLsn: tx.commitLsn, events: events.map((e) => Buffer.from(e).toString()) }),
  });
  await wal.close();
  return all;
}

/** How a copy differs from its source, transaction by transaction. */
export interface CopyDifferences {
  /** In the source, not in the copy. */
  lost: number;
  /** In the copy more than once (each repeat counts). */
  duplicated: number;
  /** In the copy after a transaction committed later. */
  reordered: number;
  /** In the copy with other LSNs or events than the source's, or not in the source at all. */
  altered: number;
}

/** Counts what `copy` lost, duplicated, reordered and altered of `source` (both in commit order). */
export function differences(source: readonly ShippedTx[], copy: readonly ShippedTx[]): CopyDifferences {
  const byCommit = new Map(source.map((tx) => [tx.commitLsn, tx]));
  const seen = new Set<number>();
  const found: CopyDifferences = { lost: 0, duplicated: 0, reordered: 0, altered: 0 };
  let highest = 0;
  for (const tx of copy) {
    if (seen.has(tx.commitLsn)) {
      found.duplicated++;
      continue;
    }
    seen.add(tx.commitLsn);
    if (tx.commitLsn < highest) found.reordered++;
    highest = Math.max(highest, tx.commitLsn);
    const original = byCommit.get(tx.commitLsn);
    if (original === undefined || original.beginLsn !== tx.beginLsn || JSON.stringify(original.events) !== JSON.stringify(tx.events)) found.altered++;
  }
  for (const tx of source) if (!seen.has(tx.commitLsn)) found.lost++;
  return found;
}

export const NO_DIFFERENCES: CopyDifferences = { lost: 0, duplicated: 0, reordered: 0, altered: 0 };

/** `copy` holds exactly `source`: nothing lost, duplicated, reordered or altered. */
export function expectSameTransactions(copy: readonly ShippedTx[], source: readonly ShippedTx[], context: string): void {
  expect(differences(source, copy), `${context}: lost, duplicated, reordered, altered`).toEqual(NO_DIFFERENCES);
  expect(copy, context).toEqual(source);
}

/** `copy` holds the first transactions of `source`, as many as it holds, and nothing else. */
export function expectPrefixOf(copy: readonly ShippedTx[], source: readonly ShippedTx[], context: string): void {
  expectSameTransactions(copy, source.slice(0, copy.length), context);
}
