/*
 * What a child process did on its way to each acknowledgement, as seen from
 * outside the io seam: by strace (the syscalls) or by fsync-hook.mjs (the
 * node:fs calls). Both are reduced to one event list, in the order things
 * happened, and checked by one rule (`fsyncBeforeAckProblems`).
 */

export type IoEvent =
  /** A write to `path` returned. */
  | { kind: 'write'; path: string }
  /** An fdatasync of `path` was called... */
  | { kind: 'fsync-start'; id: string; path: string }
  /** ... and returned successfully. */
  | { kind: 'fsync-end'; id: string; path: string }
  /** ack-child.mjs wrote "segwal-commit <n>" (about to commit) or "segwal-ack <n>" (commit n acknowledged). */
  | { kind: 'marker'; what: 'commit' | 'ack'; n: number };

/**
 * Parses `strace -f -y -e trace=fdatasync,pwrite64,write` output. With -f a
 * syscall that blocks while another thread runs shows as "<unfinished ...>"
 * and later "<... name resumed>"; its return is the resumed line. strace sees
 * a thread's syscall exit before that thread can wake another one, so the
 * order of lines is the order of events.
 */
export function parseStrace(text: string): IoEvent[] {
  const events: IoEvent[] = [];
  const pending = new Map<string, { syscall: string; path: string; id: string }>();
  let nextId = 1;
  const finish = (syscall: string, path: string, id: string, result: number) => {
    if (syscall === 'pwrite64' && result > 0) events.push({ kind: 'write', path });
    if (syscall === 'fdatasync' && result === 0) events.push({ kind: 'fsync-end', id, path });
  };
  for (const line of text.split('\n')) {
    // strace pads the pid column to a width: one space or more.
    const resumed = /^(\d+)\s+<\.\.\. (\w+) resumed>.*= (-?\d+)/.exec(line);
    if (resumed !== null) {
      const [, tid, syscall, result] = resumed;
      const call = pending.get(tid!);
      pending.delete(tid!);
      if (call !== undefined && call.syscall === syscall) finish(syscall, call.path, call.id, Number(result));
      continue;
    }
    const entered = /^(\d+)\s+(\w+)\(\d+<([^>]*)>(.*)$/.exec(line);
    if (entered === null) continue;
    const [, tid, syscall, path, rest] = entered;
    const id = `strace-${nextId++}`;
    if (syscall === 'fdatasync') events.push({ kind: 'fsync-start', id, path: path! });
    if (syscall === 'write') {
      const marker = /^, "segwal-(commit|ack) (\d+)\\n"/.exec(rest!);
      if (marker !== null) events.push({ kind: 'marker', what: marker[1] as 'commit' | 'ack', n: Number(marker[2]) });
    }
    if (rest!.endsWith('<unfinished ...>')) {
      pending.set(tid!, { syscall: syscall!, path: path!, id });
      continue;
    }
    const result = /= (-?\d+)/.exec(rest!);
    if (result !== null) finish(syscall!, path!, id, Number(result[1]));
  }
  return events;
}

/**
 * For each of the `commits` commits: between the child's "commit n" and "ack
 * n" markers there is a write to `segment`, then an fdatasync of `segment`
 * that started after the last such write and returned before the ack.
 * Returns what is wrong, one line per commit (empty when all is well).
 */
export function fsyncBeforeAckProblems(events: readonly IoEvent[], segment: string, commits: number): string[] {
  const problems: string[] = [];
  const markerAt = (what: 'commit' | 'ack', n: number) =>
    events.findIndex((event) => event.kind === 'marker' && event.what === what && event.n === n);
  for (let n = 1; n <= commits; n++) {
    const start = markerAt('commit', n);
    const ack = markerAt('ack', n);
    if (start < 0 || ack < start) {
      problems.push(`commit ${n}: markers missing or out of order (commit at ${start}, ack at ${ack})`);
      continue;
    }
    const window = events.slice(start + 1, ack);
    const lastWrite = window.findLastIndex((event) => event.kind === 'write' && event.path === segment);
    if (lastWrite < 0) {
      problems.push(`commit ${n}: no write to ${segment} before its ack`);
      continue;
    }
    const covering = window.slice(lastWrite + 1).some(
      (event) =>
        event.kind === 'fsync-start' &&
        event.path === segment &&
        window.some((end) => end.kind === 'fsync-end' && end.id === event.id),
    );
    if (!covering) {
      problems.push(
        `commit ${n}: acknowledged without an fdatasync of ${segment} that started after its write and returned before the ack; ` +
          `events between the commit call and the ack: ${JSON.stringify(window)}`,
      );
    }
  }
  return problems;
}
