#include "errors.h"

#include <string.h>

#include <vector>

#include "instance.h"

namespace segwal {

// Indexed by errno. The names come from Node rather than glibc's strerrorname_np, which would make
// the prebuilt addon need glibc 2.32 (README, "Install"); they also match node:fs's `code`s.
void SetErrnoNames(Napi::Env env, Napi::Object names) {
  std::vector<std::string>* table = &InstanceOf(env).errnoNames;
  table->clear();
  Napi::Array keys = names.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); i++) {
    std::string name = keys.Get(i).As<Napi::String>().Utf8Value();
    int32_t errnum = names.Get(name).As<Napi::Number>().Int32Value();
    if (errnum <= 0 || errnum > 4095) continue;
    if (table->size() <= static_cast<size_t>(errnum)) table->resize(errnum + 1);
    if ((*table)[errnum].empty()) (*table)[errnum] = name;  // the first of two aliases, as node:fs names it
  }
}

Napi::Error MakeSysError(Napi::Env env, const SysError& error) {
  const std::vector<std::string>& names = InstanceOf(env).errnoNames;
  std::string name = static_cast<size_t>(error.errnum) < names.size() ? names[error.errnum] : "";
  std::string message = (name.empty() ? "E?" : name) + ": " + error.syscall + " failed: " + strerror(error.errnum);
  Napi::Error js = Napi::Error::New(env, message);
  js.Set("errno", Napi::Number::New(env, error.errnum));
  js.Set("syscall", Napi::String::New(env, error.syscall));
  if (!name.empty()) js.Set("code", Napi::String::New(env, name));
  return js;
}

}  // namespace segwal
