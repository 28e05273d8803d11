// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320): the value zlib's crc32() computes.
#pragma once
#include <cstddef>
#include <cstdint>

namespace segwal {

// Continues a CRC from `crc` (0 to start), like zlib's crc32(crc, data, size).
uint32_t Crc32(uint32_t crc, const uint8_t* data, size_t size);

}  // namespace segwal
