#include "crc32.h"

#include <zlib.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define SEGWAL_CRC_CLMUL 1
#endif

namespace segwal {

namespace {

// Below this size a table loop beats zlib, whose per-call set-up dominated the CRC of 21-byte
// markers and small events (measured in docs/BENCHMARKS.md).
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

#if SEGWAL_CRC_CLMUL
// Carry-less multiplication folding (the method of Intel's "Fast CRC Computation for Generic
// Polynomials Using PCLMULQDQ"), for the bit-reflected IEEE polynomial. The constants are
// x^n mod P for the fold distances used: 512 bits (R1, R2), 128 bits (R3, R4), then 64 → 32 bits
// (R5) and a Barrett reduction by P' with mu = floor(x^64 / P).
constexpr long long kR1 = 0x154442bd4, kR2 = 0x1c6e41596, kR3 = 0x1751997d0, kR4 = 0x0ccaa009e;
constexpr long long kR5 = 0x163cd6124, kPoly = 0x1db710641, kMu = 0x1f7011641;

__attribute__((target("pclmul,sse4.1"))) inline __m128i Fold(__m128i value, __m128i constants, __m128i next) {
  __m128i low = _mm_clmulepi64_si128(value, constants, 0x00);
  __m128i high = _mm_clmulepi64_si128(value, constants, 0x11);
  return _mm_xor_si128(_mm_xor_si128(low, high), next);
}

__attribute__((target("pclmul,sse4.1"))) inline __m128i Load(const uint8_t* at) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
}

// `state` is the running register (not inverted); `size` is at least 64 and a multiple of 16.
__attribute__((target("pclmul,sse4.1"))) uint32_t Crc32Folded(uint32_t state, const uint8_t* data, size_t size) {
  const __m128i by512 = _mm_set_epi64x(kR2, kR1);
  const __m128i by128 = _mm_set_epi64x(kR4, kR3);
  const __m128i low32 = _mm_set_epi32(0, 0, 0, -1);
  __m128i x1 = _mm_xor_si128(Load(data), _mm_cvtsi32_si128(static_cast<int>(state)));
  __m128i x2 = Load(data + 16), x3 = Load(data + 32), x4 = Load(data + 48);
  for (data += 64, size -= 64; size >= 64; data += 64, size -= 64) {
    x1 = Fold(x1, by512, Load(data));
    x2 = Fold(x2, by512, Load(data + 16));
    x3 = Fold(x3, by512, Load(data + 32));
    x4 = Fold(x4, by512, Load(data + 48));
  }
  x1 = Fold(Fold(Fold(x1, by128, x2), by128, x3), by128, x4);
  for (; size >= 16; data += 16, size -= 16) x1 = Fold(x1, by128, Load(data));
  // 128 → 64 bits, then 64 → 32 bits (appending the 32 zero bits a CRC implies).
  x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), _mm_clmulepi64_si128(x1, by128, 0x10));
  __m128i upper = _mm_srli_si128(x1, 4);
  x1 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x1, low32), _mm_set_epi64x(0, kR5), 0x00), upper);
  // Barrett reduction to the 32-bit remainder.
  const __m128i polyMu = _mm_set_epi64x(kMu, kPoly);
  __m128i quotient = _mm_clmulepi64_si128(_mm_and_si128(x1, low32), polyMu, 0x10);
  __m128i product = _mm_clmulepi64_si128(_mm_and_si128(quotient, low32), polyMu, 0x00);
  return static_cast<uint32_t>(_mm_extract_epi32(_mm_xor_si128(product, x1), 1));
}

bool DetectClmul() {
  __builtin_cpu_init();  // required before __builtin_cpu_supports in a static initializer
  return __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
}
const bool kHasClmul = DetectClmul();
constexpr size_t kFoldMinBytes = 64;  // four 16-byte lanes to start folding
#endif

}  // namespace

// The folding loop wherever the CPU has carry-less multiply (14.5 GB/s on 1 MiB here, against
// 5 GB/s for zlib as linked into Node); otherwise the table loop for small buffers and zlib's crc32.
uint32_t Crc32(uint32_t crc, const uint8_t* data, size_t size) {
#if SEGWAL_CRC_CLMUL
  if (kHasClmul && size >= kFoldMinBytes) {
    size_t folded = size & ~size_t{15};
    return Crc32Sliced(~Crc32Folded(~crc, data, folded), data + folded, size - folded);
  }
#endif
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

size_t FillFrameCrcs(uint8_t* data, size_t size) {
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

size_t CheckFrameCrcs(const uint8_t* data, size_t size) {
  size_t at = 0;
  while (size - at >= kMinFrameBytes) {
    size_t length = LoadU32(data + at);
    if (length < kMinFrameBytes || length > size - at) break;
    size_t crcAt = at + length - kCrcBytes;
    if (LoadU32(data + crcAt) != Crc32(0, data + at, length - kCrcBytes)) break;
    at += length;
  }
  return at;
}

}  // namespace segwal
