import { MAX_LSN } from './constants.js';

const TWO_POW_32 = 2 ** 32;

/*
 * Byte stores, not Buffer's writeUInt32LE: the frame fields are written on
 * every commit, and writeUInt32LE's range and bounds checks showed up in the
 * W3 and W4 profiles (docs/BENCHMARKS.md). Callers pass values that fit.
 */

/** Writes a u32 (0 ≤ value < 2^32), little-endian. */
export function writeU32(target: Uint8Array, value: number, offset: number): void {
  target[offset] = value;
  target[offset + 1] = value >>> 8;
  target[offset + 2] = value >>> 16;
  target[offset + 3] = value >>> 24;
}

/** Writes a safe integer as a little-endian u64 without going through BigInt. */
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

/** Whether the little-endian u64 at `offset` is `value` (an integer below 2^53), without building the number read. */
export function u64Equals(source: Buffer, offset: number, value: number): boolean {
  const low = value >>> 0;
  return source.readUInt32LE(offset) === low && source.readUInt32LE(offset + 4) === (value - low) / TWO_POW_32;
}
