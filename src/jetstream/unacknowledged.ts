/**
 * The transactions a shipper has read and the stream has not yet
 * acknowledged, oldest first, for its status: an entry per transaction, or
 * per stretch of consecutive ones that went into one message, its numbers
 * in plain arrays, not an object each (held until their ack, such objects
 * outlived the young generation; docs/BENCHMARKS.md, "Reading per record").
 */
export class Unacknowledged {
  /** Each entry's last commit LSN. */
  private commitLsns: number[] = [];
  private sizes: number[] = [];
  private counts: number[] = [];
  private readAts: number[] = [];
  /** Index of the oldest (those before it were acknowledged): Array.shift is linear on long arrays. */
  private head = 0;
  /** Their bytes as shipped. */
  bytes = 0;
  /** How many transactions. */
  count = 0;

  /** When the oldest was read (Date.now()), or null when there is none. */
  get oldestReadAt(): number | null {
    return this.readAts[this.head] ?? null;
  }

  /** `transactions` consecutive transactions up to `commitLsn`, of `bytes` as shipped, read at `readAt`. */
  add(commitLsn: number, bytes: number, readAt: number, transactions: number): void {
    this.commitLsns.push(commitLsn);
    this.sizes.push(bytes);
    this.counts.push(transactions);
    this.readAts.push(readAt);
    this.bytes += bytes;
    this.count += transactions;
  }

  /** The stream holds every transaction committed at or below `commitLsn`. */
  acknowledge(commitLsn: number): void {
    const { commitLsns, sizes, counts } = this;
    let head = this.head;
    while (head < commitLsns.length && (commitLsns[head] as number) <= commitLsn) {
      this.bytes -= sizes[head] as number;
      this.count -= counts[head++] as number;
    }
    this.head = head;
    if (head > 1024 && head * 2 > commitLsns.length) {
      this.commitLsns = commitLsns.slice(head);
      this.sizes = sizes.slice(head);
      this.counts = counts.slice(head);
      this.readAts = this.readAts.slice(head);
      this.head = 0;
    }
  }

  /** Forgets them all (they are read again from where the stream stands). */
  clear(): void {
    this.commitLsns = [];
    this.sizes = [];
    this.counts = [];
    this.readAts = [];
    this.head = 0;
    this.bytes = 0;
    this.count = 0;
  }
}
