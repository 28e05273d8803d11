// Turning errno into JS errors that carry `errno`, `code` and `syscall`, like Node's own fs errors.
#pragma once
#include <napi.h>
#include <string>

namespace segwal {

// A failed system call, captured on whichever thread ran it.
struct SysError {
  int errnum = 0;
  const char* syscall = "";
  bool failed() const { return errnum != 0; }
};

// Keeps the errno names Node knows (`os.constants.errno`, name → number) for this env's errors.
void SetErrnoNames(Napi::Env env, Napi::Object names);

Napi::Error MakeSysError(Napi::Env env, const SysError& error);

}  // namespace segwal
