import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { toReplicationError } from './errors.js';
import { checkConnectOptions, type ConnectOptions } from './options.js';
import { requireServerVersion } from './server-version.js';

/** A NATS connection with its JetStream client and manager. */
export interface JetStreamConnection {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** The version of the server connected to now (it can change on a reconnect). */
  readonly serverVersion: string;
  /** The largest message (data plus headers) the server connected to now accepts. */
  readonly maxPayload: number;
  /** Closes the connection; reads in progress end. */
  close(): Promise<void>;
}

/**
 * Connects to one of `servers`, checks that JetStream answers (the manager
 * asks for the account's JetStream info) and, with `minServerVersion`, that
 * the server is recent enough. Fails with WAL_REPLICATION.
 */
export async function connectJetStream(options: ConnectOptions): Promise<JetStreamConnection> {
  const { servers, name, reconnect, timeoutMs, minServerVersion } = checkConnectOptions(options);
  const connectionOptions: ConnectionOptions = { servers };
  if (name !== undefined) connectionOptions.name = name;
  if (reconnect?.maxAttempts !== undefined) connectionOptions.maxReconnectAttempts = reconnect.maxAttempts;
  if (reconnect?.waitMs !== undefined) connectionOptions.reconnectTimeWait = reconnect.waitMs;
  const jetStreamOptions = timeoutMs === undefined ? {} : { timeout: timeoutMs };

  let nc: NatsConnection;
  try {
    nc = await connect(connectionOptions);
  } catch (error) {
    throw toReplicationError(error, `connect to ${servers.join(', ')}`);
  }
  try {
    const jsm = await jetstreamManager(nc, jetStreamOptions);
    const connection: JetStreamConnection = {
      nc,
      js: jetstream(nc, jetStreamOptions),
      jsm,
      get serverVersion() {
        return nc.info?.version ?? '';
      },
      get maxPayload() {
        return nc.info?.max_payload ?? 0;
      },
      close: () => nc.close(),
    };
    if (minServerVersion !== undefined) requireServerVersion(connection.serverVersion, minServerVersion);
    return connection;
  } catch (error) {
    await nc.close();
    throw toReplicationError(error, `JetStream on ${nc.getServer()}`);
  }
}
