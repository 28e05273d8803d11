import { loadJetStream } from './load-jetstream.js';
import { STATUS_FLAGS, STREAM_FLAGS, inFlagWords, statusFlags, streamFlags } from './replication-flags.js';
import { followerStatusLine, reportStatus } from './status-lines.js';
import { stopOnSignals } from './stop-signals.js';
import { EXIT_OK, type Command } from './usage.js';

export const followCommand: Command = {
  name: 'follow',
  summary: 'keep a replica of a shipped log, live',
  help: `segwal follow <dir> --servers URL[,URL…] --stream NAME [--subject S] [--status-ms MS] [--json]

Rebuilds the log a stream carries as a replica in <dir> (followStream of
segwal/jetstream, docs/REPLICATION.md): whole transactions in order, at the
source's LSNs, every message checked (CRC, log id, chain); then each new one
the stream gets, until SIGINT or SIGTERM. Then it closes the replica, prints
its last status and exits 0 (a second signal ends it at once). Started
again, it goes on from the replica's last record. <dir> is empty or missing,
or a replica of the same log; Wal.open({ dir, replica: true }) reads it.
A status line goes to stderr every --status-ms: the state, the applied
commit LSN, the stream sequence, the messages pending, the lag. Exits 1 when
the stream and the replica disagree (another log, a broken chain), or the
replica is one open refuses (damaged), naming why; 2 when it cannot start
for another reason (a stream with no message yet among others).
Needs @nats-io/transport-node and @nats-io/jetstream.
  --servers URL[,URL…]  the NATS servers, comma-separated (nats://host:port)
  --stream NAME         the stream the log is shipped to
  --subject S           the log's subject (default the subject of the stream's first message)
  --status-ms MS        between status lines (default 5000; 0: only the last)
  --json                each status as one JSON object (follower.status())`,
  options: { ...STREAM_FLAGS, ...STATUS_FLAGS },
  async run(dir, values, out) {
    const stream = streamFlags(values);
    const status = statusFlags(values);
    const { followStream } = await loadJetStream();
    // Taken before connecting: a signal while it connects still ends in a clean close.
    const stop = stopOnSignals();
    try {
      const follower = await followStream({ ...stream, dir, signal: stop.signal }).catch((error: unknown) => {
        throw inFlagWords(error);
      });
      const report = reportStatus(out, status, () => follower.status(), followerStatusLine);
      try {
        await follower.done;
      } finally {
        report.last();
      }
      return EXIT_OK;
    } finally {
      stop.dispose();
    }
  },
};
