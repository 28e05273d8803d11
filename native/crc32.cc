#include "crc32.h"

#include <zlib.h>

namespace segwal {

// zlib's crc32 as linked into Node itself (its headers ship with Node): the same function
// node:zlib.crc32 calls, with SIMD folding where the CPU has it.
uint32_t Crc32(uint32_t crc, const uint8_t* data, size_t size) {
  return static_cast<uint32_t>(crc32_z(crc, data, size));
}

namespace {
constexpr size_t kCrcBytes = 4;
constexpr size_t kMinFrameBytes = 25;

uint32_t ReadU32(const uint8_t* at) {
  return static_cast<uint32_t>(at[0]) | static_cast<uint32_t>(at[1]) << 8 | static_cast<uint32_t>(at[2]) << 16 |
         static_cast<uint32_t>(at[3]) << 24;
}

void WriteU32(uint8_t* at, uint32_t value) {
  for (int i = 0; i < 4; i++) at[i] = static_cast<uint8_t>(value >> (8 * i));
}
}  // namespace

size_t SealFrames(uint8_t* data, size_t size) {
  size_t at = 0;
  while (size - at >= kMinFrameBytes) {
    size_t length = ReadU32(data + at);
    if (length < kMinFrameBytes || length > size - at) break;
    size_t crcAt = at + length - kCrcBytes;
    WriteU32(data + crcAt, Crc32(0, data + at, length - kCrcBytes));
    at += length;
  }
  return at;
}

}  // namespace segwal
