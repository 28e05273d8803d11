import { crc32 as zlibCrc32 } from 'node:zlib';

/** CRC-32 (IEEE), continuing from `initial`. Backends may supply a faster one. */
export type Crc32 = (data: Uint8Array, initial?: number) => number;

/** The reference CRC: zlib's, which is what the format specifies. */
export const referenceCrc32: Crc32 = (data, initial = 0) => zlibCrc32(data, initial);
