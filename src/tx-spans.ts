/**
 * Transactions that outlive a segment or the durable point.
 *
 * A `commit()` transaction is staged whole and never spans a rotation, so only
 * transactions built with `begin()` (and, during recovery, whatever the log
 * holds) are tracked here. Truncation and the checkpoint fence ask this class
 * so that they never separate a transaction that must still replay from its
 * first records (docs/DESIGN.md, "The checkpoint fence").
 */
export class TxSpans {
  /** begin LSN → end LSN (commit or abort), or null while open; until the end is durable. */
  private readonly live = new Map<number, number | null>();
  /** begin LSN → end LSN (null while open) of transactions open at some segment's end. */
  private readonly carriedEnd = new Map<number, number | null>();
  /** segment id → begin LSNs of the transactions open at its end. */
  private readonly carriedBySegment = new Map<number, number[]>();
  /** Ends at or below this are already durable and need not be kept in `live`. */
  private durableLsn = 0;

  begun(beginLsn: number): void {
    this.live.set(beginLsn, null);
  }

  ended(beginLsn: number, endLsn: number): void {
    if (endLsn <= this.durableLsn) this.live.delete(beginLsn);
    else if (this.live.has(beginLsn)) this.live.set(beginLsn, endLsn);
    if (this.carriedEnd.has(beginLsn)) this.carriedEnd.set(beginLsn, endLsn);
  }

  isOpen(beginLsn: number): boolean {
    return this.live.get(beginLsn) === null;
  }

  openCount(): number {
    let count = 0;
    for (const end of this.live.values()) if (end === null) count++;
    return count;
  }

  /** Forgets transactions whose end is now durable. */
  forgetDurablyEnded(durableLsn: number): void {
    this.durableLsn = durableLsn;
    for (const [begin, end] of this.live) if (end !== null && end <= durableLsn) this.live.delete(begin);
  }

  /** The begin LSN of the oldest transaction open or not yet durably ended, or null. */
  oldestLiveBegin(): number | null {
    let oldest: number | null = null;
    for (const begin of this.live.keys()) if (oldest === null || begin < oldest) oldest = begin;
    return oldest;
  }

  /** Records which transactions are open as `segmentId` ends. */
  segmentEnded(segmentId: number): void {
    const open: number[] = [];
    for (const [begin, end] of this.live) if (end === null) open.push(begin);
    if (open.length === 0) return;
    this.carriedBySegment.set(segmentId, open);
    for (const begin of open) if (!this.carriedEnd.has(begin)) this.carriedEnd.set(begin, null);
  }

  /** True when every transaction open at the end of `segmentId` has ended at or below `fence`. */
  carriedEndedBy(segmentId: number, fence: number): boolean {
    for (const begin of this.carriedBySegment.get(segmentId) ?? []) {
      const end = this.carriedEnd.get(begin);
      if (end === null || end === undefined || end > fence) return false;
    }
    return true;
  }

  /** Drops what only a deleted segment needed. */
  segmentDeleted(segmentId: number): void {
    this.carriedBySegment.delete(segmentId);
    const stillCarried = new Set<number>();
    for (const begins of this.carriedBySegment.values()) for (const begin of begins) stillCarried.add(begin);
    for (const begin of this.carriedEnd.keys()) if (!stillCarried.has(begin)) this.carriedEnd.delete(begin);
  }
}
