import fs from 'node:fs';

/**
 * A follower in another process than the writer sleeps between polls; this
 * wakes it when the log directory changes (a write to a segment, a segment
 * created or removed), so a commit reaches it in about the time of a read,
 * not half a poll interval. The poll interval stays the bound: where the
 * platform gives no notification (a network file system, the inotify watch
 * limit reached, a directory not there yet) the follower simply polls, as it
 * is documented to (docs/CLI.md, "How it follows").
 */
export class DirectoryChanges {
  private watcher: fs.FSWatcher | null = null;
  /**
   * Something changed since the last wait began. It starts true: the watch
   * begins after the read that found nothing new, and a commit landing
   * between that read and the watch would not be noticed, so the first wait
   * returns at once and the follower reads again with the watch in place.
   */
  private changed = true;
  private wake: (() => void) | null = null;

  constructor(dir: string) {
    try {
      // Not persistent: the poll timer, not the watch, keeps a waiting follower's process alive, as before.
      this.watcher = fs.watch(dir, { persistent: false }, () => this.noticed());
      this.watcher.on('error', () => this.close());
    } catch {
      this.watcher = null; // polling alone
    }
  }

  /** Resolves after `ms`, at a change in the directory, or when `signal` aborts; at once when it changed since the last wait. */
  wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.changed || signal?.aborted === true) {
      this.changed = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.wake = null;
        this.changed = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }

  close(): void {
    this.watcher?.close();
    this.watcher = null;
  }

  private noticed(): void {
    this.changed = true;
    this.wake?.();
  }
}
