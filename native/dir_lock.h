// The directory lock: flock(LOCK_EX|LOCK_NB) on `.segwal.lock`.
#pragma once
#include "errors.h"

namespace segwal {

// Opens (creating if needed) and locks `path`; returns the fd holding the lock, or -1 with `error`.
int TryLock(const char* path, SysError* error);
// Releases the lock and closes the fd.
void Unlock(int fd, SysError* error);

}  // namespace segwal
