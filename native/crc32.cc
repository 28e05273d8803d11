#include "crc32.h"

#include <zlib.h>

namespace segwal {

namespace {

// Below this size a table-driven loop beats zlib: its folding code pays a set-up cost per call
// that dominated the CRC of 21-byte markers and small events (measured in docs/BENCHMARKS.md).
constexpr size_t kSmallBytes = 512;

// Slicing-by-8 tables for the reflected IEEE polynomial: table[k][b] is the CRC of byte b followed
// by k zero bytes, so eight input bytes are folded in with eight lookups.
struct SliceTables {
  uint32_t table[8][256];
  constexpr SliceTables() : table() {
    for (uint32_t b = 0; b < 256; b++) {
      uint32_t crc = b;
      for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
      table[0][b] = crc;
    }
    for (int k = 1; k < 8; k++) {
      for (int b = 0; b < 256; b++) table[k][b] = (table[k - 1][b] >> 8) ^ table[0][table[k - 1][b] & 0xff];
    }
  }
};
constexpr SliceTables kTables;

uint32_t LoadU32(const uint8_t* at) {
  return static_cast<uint32_t>(at[0]) | static_cast<uint32_t>(at[1]) << 8 | static_cast<uint32_t>(at[2]) << 16 |
         static_cast<uint32_t>(at[3]) << 24;
}

uint32_t Crc32Sliced(uint32_t crc, const uint8_t* data, size_t size) {
  const auto& t = kTables.table;
  crc = ~crc;
  for (; size >= 8; data += 8, size -= 8) {
    uint32_t low = LoadU32(data) ^ crc;
    uint32_t high = LoadU32(data + 4);
    crc = t[7][low & 0xff] ^ t[6][(low >> 8) & 0xff] ^ t[5][(low >> 16) & 0xff] ^ t[4][low >> 24] ^
          t[3][high & 0xff] ^ t[2][(high >> 8) & 0xff] ^ t[1][(high >> 16) & 0xff] ^ t[0][high >> 24];
  }
  for (; size > 0; data++, size--) crc = (crc >> 8) ^ t[0][(crc ^ *data) & 0xff];
  return ~crc;
}

}  // namespace

// Large buffers go to zlib's crc32 as linked into Node itself (its headers ship with Node): the
// same function node:zlib.crc32 calls, with SIMD folding where the CPU has it.
uint32_t Crc32(uint32_t crc, const uint8_t* data, size_t size) {
  if (size < kSmallBytes) return Crc32Sliced(crc, data, size);
  return static_cast<uint32_t>(crc32_z(crc, data, size));
}

namespace {
constexpr size_t kCrcBytes = 4;
constexpr size_t kMinFrameBytes = 25;

void WriteU32(uint8_t* at, uint32_t value) {
  for (int i = 0; i < 4; i++) at[i] = static_cast<uint8_t>(value >> (8 * i));
}
}  // namespace

size_t SealFrames(uint8_t* data, size_t size) {
  size_t at = 0;
  while (size - at >= kMinFrameBytes) {
    size_t length = LoadU32(data + at);
    if (length < kMinFrameBytes || length > size - at) break;
    size_t crcAt = at + length - kCrcBytes;
    WriteU32(data + crcAt, Crc32(0, data + at, length - kCrcBytes));
    at += length;
  }
  return at;
}

}  // namespace segwal
