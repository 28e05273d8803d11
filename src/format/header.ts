import { WalError, describeLocation } from '../errors.js';
import type { Crc32 } from './crc.js';
import { FLAG_REPLICA, FLAG_SEALED, FORMAT_VERSION, HEADER_BYTES, MAX_LSN, OLDEST_FORMAT_VERSION, SEGMENT_MAGIC } from './constants.js';
import { readU64, writeU64 } from './little-endian.js';

export interface SegmentHeader {
  baseLsn: number;
  sealed: boolean;
  /** The segment belongs to a replica: it may hold Replicated records. */
  replica: boolean;
  /** 1 or 2 (docs/FORMAT.md): a segment keeps the version it was created with, sealed or not. */
  formatVersion: number;
}

const MAGIC_AT = 0;
const VERSION_AT = 8;
const BASE_LSN_AT = 12;
const FLAGS_AT = 20;
const RESERVED_AT = 24;
const CRC_AT = 28;

export function encodeSegmentHeader(header: SegmentHeader, crc32: Crc32): Buffer {
  const bytes = Buffer.alloc(HEADER_BYTES);
  SEGMENT_MAGIC.copy(bytes, MAGIC_AT);
  bytes.writeUInt32LE(header.formatVersion, VERSION_AT);
  writeU64(bytes, header.baseLsn, BASE_LSN_AT);
  bytes.writeUInt32LE((header.sealed ? FLAG_SEALED : 0) | (header.replica ? FLAG_REPLICA : 0), FLAGS_AT);
  bytes.writeUInt32LE(0, RESERVED_AT);
  bytes.writeUInt32LE(crc32(bytes.subarray(0, CRC_AT)), CRC_AT);
  return bytes;
}

/** Decodes the first 32 bytes of a segment; throws `WAL_BAD_SEGMENT_HEADER` naming `file`. */
export function decodeSegmentHeader(bytes: Buffer, file: string, crc32: Crc32): SegmentHeader {
  const fail = (why: string): never => {
    throw new WalError('WAL_BAD_SEGMENT_HEADER', `bad segment header: ${why}${describeLocation({ file, offset: 0 })}`, {
      file,
      offset: 0,
    });
  };
  if (bytes.length < HEADER_BYTES) fail(`only ${bytes.length} of ${HEADER_BYTES} bytes present`);
  if (!bytes.subarray(MAGIC_AT, MAGIC_AT + SEGMENT_MAGIC.length).equals(SEGMENT_MAGIC)) fail('magic is not SEGWAL');
  const storedCrc = bytes.readUInt32LE(CRC_AT);
  const actualCrc = crc32(bytes.subarray(0, CRC_AT));
  if (storedCrc !== actualCrc) fail(`header CRC ${hex(storedCrc)} does not match ${hex(actualCrc)}`);
  const version = bytes.readUInt32LE(VERSION_AT);
  if (version < OLDEST_FORMAT_VERSION || version > FORMAT_VERSION) {
    fail(`format version ${version} is not ${OLDEST_FORMAT_VERSION}..${FORMAT_VERSION}`);
  }
  const baseLsn = readU64(bytes, BASE_LSN_AT);
  if (baseLsn < 0 || baseLsn > MAX_LSN) {
    throw new WalError('WAL_MALFORMED', `segment base LSN is above 2^53-1${describeLocation({ file, offset: BASE_LSN_AT })}`, {
      file,
      offset: BASE_LSN_AT,
    });
  }
  if (baseLsn === 0) fail('base LSN is 0');
  const flags = bytes.readUInt32LE(FLAGS_AT);
  if ((flags & ~(FLAG_SEALED | FLAG_REPLICA)) !== 0) fail(`unknown flags ${hex(flags)}`);
  return { baseLsn, sealed: (flags & FLAG_SEALED) !== 0, replica: (flags & FLAG_REPLICA) !== 0, formatVersion: version };
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}
