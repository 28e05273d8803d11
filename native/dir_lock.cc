#include "dir_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace segwal {

int TryLock(const char* path, SysError* error) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = {errno, "open"};
    return -1;
  }
  int result;
  do result = flock(fd, LOCK_EX | LOCK_NB);
  while (result != 0 && errno == EINTR);
  if (result != 0) {
    *error = {errno, "flock"};
    close(fd);
    return -1;
  }
  return fd;
}

void Unlock(int fd, SysError* error) {
  if (flock(fd, LOCK_UN) != 0) *error = {errno, "flock"};
  if (close(fd) != 0 && !error->failed()) *error = {errno, "close"};
}

}  // namespace segwal
