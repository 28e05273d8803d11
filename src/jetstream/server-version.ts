import { WalError } from '../errors.js';

/*
 * nats-server versions are major.minor.patch, sometimes with a suffix
 * ("2.11.0-RC.1", "2.10.4-binary"). Only the three numbers are compared: a
 * minimum says which fixes a server must have, and a release candidate of a
 * version is taken to have them.
 */

const VERSION = /^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/;

function parseVersion(version: string): [number, number, number] {
  const match = VERSION.exec(version);
  if (match === null) {
    throw new WalError('WAL_INVALID_OPTIONS', `not a nats-server version (major.minor.patch): ${JSON.stringify(version)}`);
  }
  return [Number(match[1]), Number(match[2]), Number(match[3])];
}

/** Negative, zero or positive as server version `a` is older than, the same as, or newer than `b`. */
export function compareServerVersions(a: string, b: string): number {
  const left = parseVersion(a);
  const right = parseVersion(b);
  for (let i = 0; i < 3; i++) {
    const difference = (left[i] as number) - (right[i] as number);
    if (difference !== 0) return difference;
  }
  return 0;
}

/** Throws WAL_REPLICATION when `version` (a server's) is older than `minimum`. */
export function requireServerVersion(version: string, minimum: string): void {
  if (compareServerVersions(version, minimum) < 0) {
    throw new WalError('WAL_REPLICATION', `nats-server ${version} is older than the minimum ${minimum} this connection requires`);
  }
}
