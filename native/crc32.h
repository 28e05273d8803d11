// CRC-32 (IEEE 802.3), and filling in the CRC trailers of record frames with it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace segwal {

// Continues a CRC from `crc` (0 to start), exactly as zlib's crc32(crc, data, size).
uint32_t Crc32(uint32_t crc, const uint8_t* data, size_t size);

// Fills in the CRC trailer of every whole frame in `data` (frames back to back, each starting with
// its u32 little-endian length and ending with a u32 CRC of the bytes before it). Stops at a frame
// whose length is out of range or runs past `size`; returns the bytes of the frames filled in.
size_t FillFrameCrcs(uint8_t* data, size_t size);

// Walks the frames in `data` as FillFrameCrcs does and checks each one's CRC trailer instead. Stops
// at a length out of range, a frame running past `size`, or a CRC that does not hold; returns the
// bytes of the frames before that point, whose CRCs all hold.
size_t CheckFrameCrcs(const uint8_t* data, size_t size);

}  // namespace segwal
