import { CliError } from './usage.js';

/*
 * segwal/jetstream, loaded only when a command needs it. Its NATS clients are
 * optional peer dependencies (docs/REPLICATION.md), so the CLI never imports
 * it statically: inspect, verify, dump and stats must run without them.
 */

type JetStreamModule = typeof import('../jetstream/index.js');

const INSTALL_HINT = 'npm install @nats-io/transport-node @nats-io/jetstream';

/** The segwal/jetstream module; without the NATS clients, a CliError saying how to install them. */
export async function loadJetStream(): Promise<JetStreamModule> {
  try {
    return await import('../jetstream/index.js');
  } catch (error) {
    if (!isMissingNatsClient(error)) throw error;
    throw new CliError(`needs the NATS clients, which segwal leaves optional: install them next to it (${INSTALL_HINT})`);
  }
}

/** Node's own failure to find a `@nats-io/…` package, and nothing else: any other failure to load is a bug to show as it is. */
function isMissingNatsClient(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === 'ERR_MODULE_NOT_FOUND' && /'@nats-io\//.test((error as Error).message);
}
