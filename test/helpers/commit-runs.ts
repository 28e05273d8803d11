import { isCommitRun, type CommitRun } from '../../src/read/log-stream.js';
import type { Shippable, ShippableTransaction } from '../../src/readers.js';

/*
 * The shipper's reads hand consecutive one-frame transactions over as their
 * Commit frames (a CommitRun). Tests split a run into its transactions on
 * their own, from docs/FORMAT.md's frame layout (length u32, kind u8, lsn
 * u64, tx_begin_lsn u64, payload, crc u32), copying each payload.
 */

/** The transactions of a run, each with its own copy of its payload (the events in the batch format). */
export function runTransactions(run: CommitRun): ShippableTransaction[] {
  const transactions: ShippableTransaction[] = [];
  const { frames } = run;
  for (let at = 0; at < frames.length; ) {
    const length = frames.readUInt32LE(at);
    const commitLsn = Number(frames.readBigUInt64LE(at + 5));
    const beginLsn = Number(frames.readBigUInt64LE(at + 13));
    const batch = Buffer.from(frames.subarray(at + 21, at + length - 4));
    transactions.push({ beginLsn, commitLsn, events: [], batch, resume: { fromLsn: commitLsn + 1, scanFromLsn: commitLsn + 1 } });
    at += length;
  }
  return transactions;
}

/** Every transaction of the items, in order, each copied as it is taken (a batch's views last until the next batch). */
export function itemTransactions(items: readonly Shippable[]): ShippableTransaction[] {
  return items.flatMap((item) =>
    isCommitRun(item) ? runTransactions(item) : [{ ...item, events: item.events.map((event) => Buffer.from(event)), batch: item.batch === null ? null : Buffer.from(item.batch) }],
  );
}
