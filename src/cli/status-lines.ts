import type { FollowerStatus, ShipStatus } from '../jetstream/index.js';
import { count } from './report.js';
import type { Output } from './usage.js';

/*
 * The status lines of the commands that run until stopped (ship, follow):
 * on stderr, so that stdout stays free for what a command produces, every
 * --status-ms and once more when the command ends.
 */

/** The shipper's state, what the stream acknowledged, what is read and not yet acknowledged, the last error. */
export function shipStatusLine(status: ShipStatus): string {
  const behind = `${count(status.transactionsBehind, 'transaction')} behind (${count(status.unacknowledgedBytes, 'byte')}, the oldest read ${status.oldestUnacknowledgedMs} ms ago)`;
  return withLastError(`${status.state}: acknowledged commit LSN ${status.acknowledgedCommitLsn} (stream seq ${status.streamSeq}); ${behind}`, status.lastError);
}

/** The follower's state, what the replica holds, how far behind the stream it is, the last error. */
export function followerStatusLine(status: FollowerStatus): string {
  return withLastError(
    `${status.state}: applied commit LSN ${status.appliedCommitLsn} (stream seq ${status.streamSeq}); ${status.pending} pending; lag ${status.lagMs} ms`,
    status.lastError,
  );
}

function withLastError(line: string, lastError: string | null): string {
  return lastError === null ? line : `${line}; last error: ${lastError}`;
}

/**
 * Prints `status()` on stderr every `everyMs` (0: never) until `last()`,
 * which prints it once more: a line of text, or with `json` the whole status
 * as one JSON object a line.
 */
export function reportStatus<Status>(
  out: Output,
  { everyMs, json }: { everyMs: number; json: boolean },
  status: () => Status,
  line: (status: Status) => string,
): { last(): void } {
  const print = () => out.stderr(`${json ? JSON.stringify(status()) : line(status())}\n`);
  const timer = everyMs > 0 ? setInterval(print, everyMs) : undefined;
  return {
    last() {
      clearInterval(timer);
      print();
    },
  };
}
