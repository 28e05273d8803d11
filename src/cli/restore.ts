import { loadJetStream } from './load-jetstream.js';
import { STREAM_FLAGS, inFlagWords, streamFlags } from './replication-flags.js';
import { EXIT_OK, lsnOption, type Command } from './usage.js';

export const restoreCommand: Command = {
  name: 'restore',
  summary: 'rebuild a log from its stream, up to a commit LSN',
  help: `segwal restore <dir> --servers URL[,URL…] --stream NAME [--subject S] [--until-commit-lsn LSN] [--json]

Rebuilds the log a stream carries in <dir> (restoreFromStream of
segwal/jetstream, docs/REPLICATION.md), as follow does, up to the end of the
stream as it is when the restore starts, or up to --until-commit-lsn: every
transaction committed at or below it, none after. Then it closes the log and
prints the commit LSN and stream sequence it reached on stdout (exit 0).
<dir> is empty or missing, or a replica of the same log: a restore goes on
from where it stands. The result is a replica (Wal.open({ dir, replica: true
}) reads it); opened without replica, it is promoted and goes on as a
primary. Exits 1 when the stream and <dir> disagree (another log, a broken
chain), or <dir> holds a log open refuses (damaged), naming why; 2 when it
cannot start for another reason, or when the stream ends before
--until-commit-lsn (<dir> then holds what the stream had: restore again
once the stream holds that commit).
Needs @nats-io/transport-node and @nats-io/jetstream.
  --servers URL[,URL…]     the NATS servers, comma-separated (nats://host:port)
  --stream NAME            the stream the log is shipped to
  --subject S              the log's subject (default the subject of the stream's first message)
  --until-commit-lsn LSN   stop after the transaction committed at this LSN
  --json                   the final status as JSON (follower.status())`,
  options: { ...STREAM_FLAGS, 'until-commit-lsn': { type: 'string' }, json: { type: 'boolean' } },
  async run(dir, values, out) {
    const stream = streamFlags(values);
    const untilCommitLsn = lsnOption(values, 'until-commit-lsn');
    const { restoreFromStream } = await loadJetStream();
    const status = await restoreFromStream({ ...stream, dir, untilCommitLsn }).catch((error: unknown) => {
      throw inFlagWords(error);
    });
    if (values.json === true) await out.stdout(`${JSON.stringify(status, null, 2)}\n`);
    else await out.stdout(`restored ${dir} up to commit LSN ${status.appliedCommitLsn} (stream seq ${status.streamSeq})\n`);
    return EXIT_OK;
  },
};
