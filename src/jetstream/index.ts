/*
 * segwal/jetstream: a thin, typed access layer over NATS JetStream (the
 * @nats-io clients, optional peer dependencies). The core package never
 * imports this. docs/REPLICATION.md says how it is tested.
 */
export { connectJetStream, type JetStreamConnection } from './connect.js';
export { compareServerVersions, requireServerVersion } from './server-version.js';
export { ensureStream, describeStream, type StreamReport } from './stream.js';
export { publishMessage, type PublishAck, type PublishExpectation, type PublishOptions } from './publish.js';
export { firstMessageOnSubject, lastMessageOnSubject } from './get-message.js';
export { readStream } from './read.js';
export { ReplicationConflictError, type StreamExpectation } from './errors.js';
export type { MessageHeaders, StoredMessage } from './message.js';
export { DEFAULT_REPLICAS, type ConnectOptions, type ReadStreamOptions, type StreamSpec } from './options.js';
export { ship, shipDirectory, type ShipOptions, type ShipStatus, type ShipperHandle } from './ship.js';
export type { ShipperState, ShipperStatus } from './shipper.js';
export { HEADER as WIRE_HEADERS, decodeTransactions, parseWireMessage, type WireMessage, type WireTransaction } from './wire.js';
export { followStream, restoreFromStream, type FollowOptions, type FollowerHandle, type FollowerStatus } from './follow.js';
