import {
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type ClusterInfo,
  type StreamConfig,
  type StreamInfo,
  type StreamState,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { WalError } from '../errors.js';
import type { JetStreamConnection } from './connect.js';
import { toReplicationError } from './errors.js';
import { normalizeStreamSpec, type NormalizedStreamSpec, type StreamSpec } from './options.js';

/** A stream as the server reports it. */
export interface StreamReport {
  config: StreamConfig;
  state: StreamState;
  /** Its leader and replicas, as the server that answered sees them. */
  cluster: ClusterInfo | undefined;
}

/**
 * Creates the stream `spec` describes, or finds it already there with the
 * same settings. An existing stream whose settings differ is refused with
 * WAL_REPLICATION naming each difference: it is never edited here, since a
 * changed subject, limit or replica count is a decision for its operator.
 */
export async function ensureStream(
  connection: JetStreamConnection,
  spec: StreamSpec,
): Promise<StreamReport & { created: boolean }> {
  const wanted = streamConfigFor(normalizeStreamSpec(spec));
  const existing = await streamInfo(connection, wanted.name);
  if (existing !== null) {
    const differences = differencesFrom(existing.config, wanted);
    if (differences.length > 0) {
      throw new WalError(
        'WAL_REPLICATION',
        `stream ${wanted.name} exists with other settings: ${differences.join('; ')}. ` +
          'It is left as it is: change or delete it yourself, or ensure it with the settings it has',
      );
    }
    return { ...report(existing), created: false };
  }
  try {
    return { ...report(await connection.jsm.streams.add(wanted)), created: true };
  } catch (error) {
    throw toReplicationError(error, `create stream ${wanted.name}`);
  }
}

/** The stream's config, state and cluster; WAL_REPLICATION when it does not exist. */
export async function describeStream(connection: JetStreamConnection, name: string): Promise<StreamReport> {
  const info = await streamInfo(connection, name);
  if (info === null) throw new WalError('WAL_REPLICATION', `stream ${name} does not exist`);
  return report(info);
}

async function streamInfo(connection: JetStreamConnection, name: string): Promise<StreamInfo | null> {
  try {
    return await connection.jsm.streams.info(name);
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) return null;
    throw toReplicationError(error, `stream info of ${name}`);
  }
}

function report(info: StreamInfo): StreamReport {
  return { config: info.config, state: info.state, cluster: info.cluster };
}

type WantedConfig = Partial<StreamConfig> & { name: string };

/**
 * Every setting ensureStream decides. The limits are spelled out (they are
 * the server's defaults) so that a stream made elsewhere with a limit that
 * would drop messages is seen as different.
 */
function streamConfigFor(spec: NormalizedStreamSpec): WantedConfig {
  return {
    name: spec.name,
    subjects: spec.subjects,
    num_replicas: spec.replicas,
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    max_msgs: -1,
    max_bytes: -1,
    max_age: 0,
    max_msgs_per_subject: -1,
    duplicate_window: nanos(spec.duplicateWindowMs),
    max_msg_size: spec.maxMsgSize,
    allow_direct: spec.allowDirect,
  };
}

function differencesFrom(actual: StreamConfig, wanted: WantedConfig): string[] {
  const differences: string[] = [];
  for (const [key, value] of Object.entries(wanted)) {
    const have: unknown = actual[key as keyof StreamConfig];
    const same = key === 'subjects' ? sameSet(have as string[] | undefined, value as string[]) : have === value;
    if (!same) differences.push(`${key} is ${JSON.stringify(have)}, not ${JSON.stringify(value)}`);
  }
  return differences;
}

function sameSet(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return a !== undefined && JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
}
