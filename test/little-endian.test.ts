import { describe, expect, it } from 'vitest';
import { MAX_LSN } from '../src/format/constants.js';
import { readU64, u64Equals, writeU32, writeU64 } from '../src/format/little-endian.js';
import { mulberry32 } from './helpers/random.js';

/** Fixed seed: the same values on every run. */
const random = mulberry32(0x1e);

describe('little-endian integers of the frame and header fields', () => {
  it('writeU32 writes the same bytes as writeUInt32LE for every u32 shape, and nothing around them', () => {
    const values = [0, 1, 255, 256, 65535, 65536, 2 ** 24, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1];
    for (let i = 0; i < 1000; i++) values.push(Math.floor(random() * 2 ** 32));
    for (const value of values) {
      const ours = Buffer.alloc(9, 0xee);
      writeU32(ours, value, 3);
      const expected = Buffer.alloc(9, 0xee);
      expected.writeUInt32LE(value, 3);
      expect(ours).toEqual(expected);
    }
  });

  it('u64Equals tells the u64 at an offset from every other value', () => {
    const values = [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 52 + 3, MAX_LSN];
    for (const value of values) {
      const bytes = Buffer.alloc(12, 0xee);
      writeU64(bytes, value, 2);
      expect(u64Equals(bytes, 2, value), String(value)).toBe(true);
      for (const other of [value + 1, value - 1, value + 2 ** 32, value - 2 ** 32]) {
        if (other >= 0 && other <= MAX_LSN) expect(u64Equals(bytes, 2, other), `${value} vs ${other}`).toBe(false);
      }
    }
  });

  it('writes the same bytes as a BigInt u64 for every safe integer shape, and reads them back', () => {
    const values = [0, 1, 255, 256, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 40 + 12345, 2 ** 52 + 3, MAX_LSN];
    for (let i = 0; i < 1000; i++) values.push(Math.floor(random() * MAX_LSN));
    for (const value of values) {
      const ours = Buffer.alloc(11, 0xee);
      writeU64(ours, value, 3);
      const expected = Buffer.alloc(11, 0xee);
      expected.writeBigUInt64LE(BigInt(value), 3);
      expect(ours).toEqual(expected);
      expect(readU64(ours, 3)).toBe(value);
    }
  });

  it('reads a u64 above 2^53 − 1 as -1 (not an LSN)', () => {
    const bytes = Buffer.alloc(8);
    bytes.writeBigUInt64LE(BigInt(MAX_LSN) + 1n, 0);
    expect(readU64(bytes, 0)).toBe(-1);
    bytes.writeBigUInt64LE(2n ** 64n - 1n, 0);
    expect(readU64(bytes, 0)).toBe(-1);
  });
});
