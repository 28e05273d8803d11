import { MAX_LSN } from './constants.js';

const TWO_POW_32 = 2 ** 32;

/** Writes a safe integer as a little-endian u64 without going through BigInt. */
export function writeU64(target: Buffer, value: number, offset: number): void {
  target.writeUInt32LE(value % TWO_POW_32, offset);
  target.writeUInt32LE(Math.floor(value / TWO_POW_32), offset + 4);
}

/** Reads a little-endian u64; returns -1 when it exceeds 2^53 − 1 (not a valid LSN). */
export function readU64(source: Buffer, offset: number): number {
  const low = source.readUInt32LE(offset);
  const high = source.readUInt32LE(offset + 4);
  const value = high * TWO_POW_32 + low;
  return high > 0x1f_ffff || value > MAX_LSN ? -1 : value;
}
