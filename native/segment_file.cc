#include "segment_file.h"

#include "crc32.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

namespace segwal {

int OpenSegment(const std::string& path, bool create, SysError* error) {
  int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
  int fd;
  do fd = open(path.c_str(), flags, 0644);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) *error = {errno, "open"};
  return fd;
}

int64_t WriteAll(int fd, const uint8_t* data, size_t size, int64_t position, SysError* error) {
  size_t done = 0;
  while (done < size) {
    ssize_t wrote = pwrite(fd, data + done, size - done, position + static_cast<int64_t>(done));
    if (wrote < 0) {
      if (errno == EINTR) continue;
      *error = {errno, "pwrite"};
      break;
    }
    if (wrote == 0) break;  // the device took nothing and said nothing: report the short count
    done += static_cast<size_t>(wrote);
  }
  return static_cast<int64_t>(done);
}

void DataSync(int fd, SysError* error) {
  int result;
  do result = fdatasync(fd);
  while (result != 0 && errno == EINTR);
  if (result != 0) *error = {errno, "fdatasync"};
}

void StartWriteback(int fd, int64_t offset, int64_t length, SysError* error) {
  int result;
  do result = sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE);
  while (result != 0 && errno == EINTR);
  if (result != 0) *error = {errno, "sync_file_range"};
}

int64_t AppendFrames(int fd, uint8_t* data, size_t size, int64_t position, bool sync, SysError* error) {
  FillFrameCrcs(data, size);
  int64_t wrote = WriteAll(fd, data, size, position, error);
  if (sync && !error->failed() && static_cast<size_t>(wrote) == size) DataSync(fd, error);
  return wrote;
}

void Allocate(int fd, int64_t size, bool zeroFill, SysError* error) {
  // The size by lseek, not fstat: fstat is a glibc 2.33 symbol, and the prebuilt addon must load on
  // the glibc 2.28 Node 20 itself needs. Writes use pwrite, so the file offset this moves is unused.
  int64_t from = lseek(fd, 0, SEEK_END);
  if (from < 0) {
    *error = {errno, "lseek"};
    return;
  }
  if (from >= size) return;
  int result;
  do result = fallocate(fd, 0, from, size - from);
  while (result != 0 && errno == EINTR);
  if (result != 0 && errno != EOPNOTSUPP) {
    *error = {errno, "fallocate"};
    return;
  }
  if (result == 0 && !zeroFill) return;
  // Small writes: the page cache keeps a file's pages in folios as large as the writes that made
  // them (Linux 6.x), and a small write costs more the larger the folio it lands in. 161-byte
  // commits into zeros written 1 MiB at a time took ~2.2 us each here, 16 KiB at a time ~0.8 us,
  // as into fresh blocks (docs/BENCHMARKS.md, "Zeros in small writes").
  static const std::vector<uint8_t> zeros(16 * 1024, 0);
  for (int64_t at = from; at < size;) {
    size_t chunk = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(zeros.size()), size - at));
    int64_t wrote = WriteAll(fd, zeros.data(), chunk, at, error);
    if (error->failed()) return;
    if (wrote == 0) {
      *error = {ENOSPC, "pwrite"};
      return;
    }
    at += wrote;
  }
}

void Truncate(int fd, int64_t size, SysError* error) {
  int result;
  do result = ftruncate(fd, size);
  while (result != 0 && errno == EINTR);
  if (result != 0) *error = {errno, "ftruncate"};
}

void Close(int fd, SysError* error) {
  // Never retry close on EINTR: on Linux the fd is already released.
  if (close(fd) != 0) *error = {errno, "close"};
}

void SyncDir(const std::string& path, SysError* error) {
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    *error = {errno, "open"};
    return;
  }
  int result;
  do result = fsync(fd);
  while (result != 0 && errno == EINTR);
  if (result != 0) *error = {errno, "fsync"};
  close(fd);
}

}  // namespace segwal
