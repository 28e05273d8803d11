import { MAX_LSN } from './constants.js';

const TWO_POW_32 = 2 ** 32;

/**
 * Writes a safe integer as a little-endian u64 without going through BigInt.
 * Byte stores, not writeUInt32LE: this runs six times per commit and the
 * range checks showed up in the W3 profile (docs/BENCHMARKS.md).
 */
export function writeU64(target: Uint8Array, value: number, offset: number): void {
  const low = value >>> 0;
  const high = (value - low) / TWO_POW_32;
  target[offset] = low;
  target[offset + 1] = low >>> 8;
  target[offset + 2] = low >>> 16;
  target[offset + 3] = low >>> 24;
  target[offset + 4] = high;
  target[offset + 5] = high >>> 8;
  target[offset + 6] = high >>> 16;
  target[offset + 7] = high >>> 24;
}

/** Reads a little-endian u64; returns -1 when it exceeds 2^53 − 1 (not a valid LSN). */
export function readU64(source: Buffer, offset: number): number {
  const low = source.readUInt32LE(offset);
  const high = source.readUInt32LE(offset + 4);
  const value = high * TWO_POW_32 + low;
  return high > 0x1f_ffff || value > MAX_LSN ? -1 : value;
}
