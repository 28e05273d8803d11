#include "errors.h"

#include <string.h>

namespace segwal {

Napi::Error MakeSysError(Napi::Env env, const SysError& error) {
  const char* name = strerrorname_np(error.errnum);
  std::string message = std::string(name != nullptr ? name : "E?") + ": " + error.syscall + " failed: " + strerror(error.errnum);
  Napi::Error js = Napi::Error::New(env, message);
  js.Set("errno", Napi::Number::New(env, error.errnum));
  js.Set("syscall", Napi::String::New(env, error.syscall));
  if (name != nullptr) js.Set("code", Napi::String::New(env, name));
  return js;
}

}  // namespace segwal
