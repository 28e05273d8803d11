/**
 * The transactions a shipper has read and the stream has not yet
 * acknowledged, oldest first, for its status: three numbers each in plain
 * arrays, not an object each (held until their ack, such objects outlived
 * the young generation; docs/BENCHMARKS.md, "Reading per record").
 */
export class Unacknowledged {
  private commitLsns: number[] = [];
  private sizes: number[] = [];
  private readAts: number[] = [];
  /** Index of the oldest (those before it were acknowledged): Array.shift is linear on long arrays. */
  private head = 0;
  /** Their bytes as shipped. */
  bytes = 0;

  get count(): number {
    return this.commitLsns.length - this.head;
  }

  /** When the oldest was read (Date.now()), or null when there is none. */
  get oldestReadAt(): number | null {
    return this.readAts[this.head] ?? null;
  }

  add(commitLsn: number, bytes: number, readAt: number): void {
    this.commitLsns.push(commitLsn);
    this.sizes.push(bytes);
    this.readAts.push(readAt);
    this.bytes += bytes;
  }

  /** The stream holds every transaction committed at or below `commitLsn`. */
  acknowledge(commitLsn: number): void {
    const { commitLsns, sizes } = this;
    let head = this.head;
    while (head < commitLsns.length && (commitLsns[head] as number) <= commitLsn) this.bytes -= sizes[head++] as number;
    this.head = head;
    if (head > 1024 && head * 2 > commitLsns.length) {
      this.commitLsns = commitLsns.slice(head);
      this.sizes = sizes.slice(head);
      this.readAts = this.readAts.slice(head);
      this.head = 0;
    }
  }

  /** Forgets them all (they are read again from where the stream stands). */
  clear(): void {
    this.commitLsns = [];
    this.sizes = [];
    this.readAts = [];
    this.head = 0;
    this.bytes = 0;
  }
}
