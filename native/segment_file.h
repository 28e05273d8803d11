// The syscalls of the append path. Each returns its failure in `error`; none decides anything.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "errors.h"

namespace segwal {

// open(O_RDWR), with O_CREAT|O_EXCL when `create`.
int OpenSegment(const std::string& path, bool create, SysError* error);
// pwrite until all `size` bytes are written (retrying EINTR and short writes); returns the count,
// which is short only if pwrite wrote nothing without an error.
int64_t WriteAll(int fd, const uint8_t* data, size_t size, int64_t position, SysError* error);
void DataSync(int fd, SysError* error);
// Starts writing back the dirty pages of [offset, offset + length) without waiting for them
// (sync_file_range SYNC_FILE_RANGE_WRITE): a later fdatasync then has less left to wait for.
void StartWriteback(int fd, int64_t offset, int64_t length, SysError* error);
// The append path in one call: fills in the CRCs of the frames in `data` (FillFrameCrcs), writes all of it at
// `position` (WriteAll), then fdatasyncs when `sync` and the write was whole. Returns the count.
int64_t AppendFrames(int fd, uint8_t* data, size_t size, int64_t position, bool sync, SysError* error);
// Grows the file to at least `size` bytes of zeros: fallocate reserves the space; with `zeroFill`
// zeros are also written over it, so later overwrites need no metadata update at fdatasync time.
// Without fallocate support zeros are written either way: the only way left to reserve the space.
void Allocate(int fd, int64_t size, bool zeroFill, SysError* error);
void Truncate(int fd, int64_t size, SysError* error);
void Close(int fd, SysError* error);
// fsync of a directory, making created or removed names durable.
void SyncDir(const std::string& path, SysError* error);

}  // namespace segwal
