import type { Wal } from '../../src/index.js';

/*
 * A writer for the shipping fault tests: commits until stopped, while the
 * test kills things around it. What it commits is checked against the log,
 * not against a list of its own: the log is the source the copies must equal.
 */

export interface WorkloadOptions {
  /** One transaction in this many carries one event of 70-250 KiB (several chunks at a 64 KiB maxMessageBytes). 0: none. */
  largeOneIn?: number;
  /** Pause after each commit, up to this many ms (a few hundred commits a second at 4). */
  thinkMs?: number;
}

/** The events of transaction `n`: 1-3 of 0.5-3 KiB, or one large one. */
export function eventsOf(n: number, random: () => number, { largeOneIn = 0 }: WorkloadOptions = {}): Buffer[] {
  if (largeOneIn > 0 && random() * largeOneIn < 1) return [Buffer.alloc(70 * 1024 + Math.floor(random() * 180 * 1024), `${n} large `)];
  return Array.from({ length: 1 + Math.floor(random() * 3) }, (_, i) => Buffer.alloc(512 + Math.floor(random() * 2560), `${n}.${i} `));
}

/** Commits until `stop()`; every 13th transaction is begun and aborted, which leaves LSNs the copies skip. */
export function keepCommitting(wal: Wal, random: () => number, options: WorkloadOptions = {}): { stop(): Promise<void> } {
  const { thinkMs = 4 } = options;
  let stopping = false;
  const running = (async () => {
    for (let n = 0; !stopping; n++) {
      if (n % 13 === 12) {
        const aborted = wal.begin();
        aborted.append(Buffer.from(`${n} aborted`));
        aborted.abort();
      } else {
        await wal.commit(eventsOf(n, random, options));
      }
      await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * thinkMs)));
    }
  })();
  return {
    async stop() {
      stopping = true;
      await running;
    },
  };
}
