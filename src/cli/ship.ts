import type { WalError } from '../errors.js';
import { loadJetStream } from './load-jetstream.js';
import { STATUS_FLAGS, STREAM_FLAGS, countFlagOptions, countFlags, inFlagWords, statusFlags, streamFlags } from './replication-flags.js';
import { requireLog } from './scan-log.js';
import { reportStatus, shipStatusLine } from './status-lines.js';
import { stopOnSignals, whenAborted } from './stop-signals.js';
import { EXIT_OK, type Command } from './usage.js';

const COUNT_FLAGS = ['replicas', 'window', 'max-message-bytes'];

export const shipCommand: Command = {
  name: 'ship',
  summary: 'ship committed transactions to a NATS JetStream stream',
  help: `segwal ship <dir> --servers URL[,URL…] --stream NAME [--subject S] [--replicas N]
           [--window N] [--max-message-bytes N] [--status-ms MS] [--json]

Ships the log in <dir> to a JetStream stream from a process of its own
(shipDirectory of segwal/jetstream, docs/REPLICATION.md): every committed
transaction once it is durable, exactly once, in commit order, and then each
new one a Wal commits, until SIGINT or SIGTERM. Then it lets what is in
flight settle, prints its last status and exits 0 (a second signal ends it at
once). Started again, it asks the stream where it stands and goes on from
there. It reads the log only: no lock, no file changed. It cannot hold the
writer's truncation: if the writer deletes what the stream lacks, it stops.
A status line goes to stderr every --status-ms: the state, the acknowledged
commit LSN, what is read and not yet acknowledged, the last error. Exits 1
when shipping stops because the log and the stream disagree (another log, a
different history) or the log is one open refuses (damaged), naming why; 2
when it cannot start for another reason.
Needs @nats-io/transport-node and @nats-io/jetstream.
  --servers URL[,URL…]     the NATS servers, comma-separated (nats://host:port)
  --stream NAME            the stream; created if missing (file store)
  --subject S              the log's subject (default segwal.<log id>)
  --replicas N             replicas of a stream it creates (default 3)
  --window N               messages published and not yet acknowledged (default 32)
  --max-message-bytes N    the largest message (default the server's max_payload)
  --status-ms MS           between status lines (default 5000; 0: only the last)
  --json                   each status as one JSON object (shipper.status())`,
  options: { ...STREAM_FLAGS, ...STATUS_FLAGS, ...countFlagOptions(COUNT_FLAGS) },
  async run(dir, values, out) {
    const stream = streamFlags(values);
    const counts = countFlags(values, COUNT_FLAGS);
    const status = statusFlags(values);
    await requireLog(dir);
    const { shipDirectory } = await loadJetStream();
    // Taken before connecting: a signal while it connects still ends in a clean close.
    const stop = stopOnSignals();
    try {
      const shipper = await shipDirectory(dir, { ...stream, ...counts }).catch((error: unknown) => {
        throw inFlagWords(error);
      });
      const failed = new Promise<WalError>((resolve) => shipper.on('failure', resolve));
      const report = reportStatus(out, status, () => shipper.status(), shipStatusLine);
      const failure = await Promise.race([failed, whenAborted(stop.signal).then(() => null)]);
      await shipper.close();
      report.last();
      if (failure !== null) throw failure;
      return EXIT_OK;
    } finally {
      stop.dispose();
    }
  },
};
