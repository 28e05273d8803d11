// The JS surface of the addon: argument unpacking, and running each blocking syscall either on the
// calling thread (the `*Sync` API) or on libuv's thread pool behind a promise. No policy lives here.
#include <napi.h>

#include <functional>
#include <string>

#include "crc32.h"
#include "dir_lock.h"
#include "errors.h"
#include "instance.h"
#include "segment_file.h"
#include "writer_lane.h"
#include "writer_thread.h"

namespace segwal {
namespace {

// Runs a Syscall on the thread pool and settles a promise with its result (a number, or undefined
// for calls that return nothing). `keepAlive` pins a JS buffer the syscall reads while it runs.
class SyscallWorker : public Napi::AsyncWorker {
 public:
  SyscallWorker(Napi::Env env, Syscall call, bool returnsNumber, Napi::Value keepAlive)
      : Napi::AsyncWorker(env, "segwal:syscall"),
        deferred_(Napi::Promise::Deferred::New(env)),
        call_(std::move(call)),
        returnsNumber_(returnsNumber) {
    if (!keepAlive.IsUndefined()) keepAlive_ = Napi::Persistent(keepAlive.As<Napi::Object>());
  }

  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override { result_ = call_(&error_); }

  void OnOK() override {
    Napi::Env env = Env();
    if (error_.failed()) {
      deferred_.Reject(MakeSysError(env, error_).Value());
    } else {
      deferred_.Resolve(returnsNumber_ ? Napi::Number::New(env, static_cast<double>(result_)) : env.Undefined());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  Syscall call_;
  bool returnsNumber_;
  Napi::ObjectReference keepAlive_;
  SysError error_;
  int64_t result_ = 0;
};

template <typename Call>
Napi::Value RunNow(Napi::Env env, const Call& call, bool returnsNumber) {
  SysError error;
  int64_t result = call(&error);
  if (error.failed()) throw MakeSysError(env, error);
  return returnsNumber ? Napi::Number::New(env, static_cast<double>(result)) : env.Undefined();
}

Napi::Value RunLater(Napi::Env env, Syscall call, bool returnsNumber, Napi::Value keepAlive = Napi::Value()) {
  auto* worker = new SyscallWorker(env, std::move(call), returnsNumber, keepAlive);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// The append path: on the addon's writer thread when it is free (no thread-pool wake-up), else on the
// thread pool. Either way one call at a time per caller, as the Wal's drain loop makes them.
Napi::Value RunOnWriterOrPool(Napi::Env env, Syscall call, Napi::Value keepAlive) {
  Napi::Promise promise;
  if (WriterOf(env).Post(env, call, keepAlive, &promise)) return promise;
  return RunLater(env, std::move(call), true, keepAlive);
}

// Each argument is read with one Node-API call whose status is the type check: W4 makes one appendFrames
// call per commit, and checking each type with a call of its own was ~7% of its time (docs/BENCHMARKS.md).
Napi::TypeError ArgError(const Napi::CallbackInfo& info, size_t index, const char* type) {
  return Napi::TypeError::New(info.Env(), "argument " + std::to_string(index) + " must be " + type);
}

int IntArg(const Napi::CallbackInfo& info, size_t index) {
  int32_t value = 0;
  if (napi_get_value_int32(info.Env(), info[index], &value) != napi_ok) throw ArgError(info, index, "a number");
  return value;
}

int64_t SizeArg(const Napi::CallbackInfo& info, size_t index) {
  int64_t value = 0;
  if (napi_get_value_int64(info.Env(), info[index], &value) != napi_ok) throw ArgError(info, index, "a number");
  return value;
}

std::string StringArg(const Napi::CallbackInfo& info, size_t index) {
  if (!info[index].IsString()) throw ArgError(info, index, "a string");
  return info[index].As<Napi::String>().Utf8Value();
}

// A flag left out must not read as false: the raw probe once lost its zero fill that way (docs/BENCHMARKS.md, Method).
bool BoolArg(const Napi::CallbackInfo& info, size_t index) {
  bool value = false;
  if (napi_get_value_bool(info.Env(), info[index], &value) != napi_ok) throw ArgError(info, index, "a boolean");
  return value;
}

struct Bytes {
  uint8_t* data;
  size_t size;
};

Bytes BytesArg(const Napi::CallbackInfo& info, size_t index) {
  napi_typedarray_type type = napi_int8_array;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(info.Env(), info[index], &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_uint8_array) {
    throw ArgError(info, index, "a Uint8Array");
  }
  return {static_cast<uint8_t*>(data), length};
}

// Each operation is built once from the arguments, then run now or later.
Syscall OpenSegmentCall(const Napi::CallbackInfo& info) {
  std::string path = StringArg(info, 0);
  bool create = BoolArg(info, 1);
  return [path, create](SysError* error) { return static_cast<int64_t>(OpenSegment(path, create, error)); };
}

Syscall WriteCall(const Napi::CallbackInfo& info) {
  int fd = IntArg(info, 0);
  Bytes data = BytesArg(info, 1);
  int64_t position = SizeArg(info, 2);
  return [fd, data, position](SysError* error) { return WriteAll(fd, data.data, data.size, position, error); };
}

// The buffer is both read and written (CRC trailers) by the call; JS does not touch it meanwhile. A lambda,
// not a Syscall: the blocking form runs it as it is, without the heap copy a std::function of it makes.
auto AppendFramesCall(const Napi::CallbackInfo& info) {
  int fd = IntArg(info, 0);
  Bytes data = BytesArg(info, 1);
  int64_t position = SizeArg(info, 2);
  bool sync = BoolArg(info, 3);
  return [fd, data, position, sync](SysError* error) { return AppendFrames(fd, data.data, data.size, position, sync, error); };
}

Syscall DataSyncCall(const Napi::CallbackInfo& info) {
  int fd = IntArg(info, 0);
  return [fd](SysError* error) { return DataSync(fd, error), int64_t{0}; };
}

Syscall StartWritebackCall(const Napi::CallbackInfo& info) {
  int fd = IntArg(info, 0);
  int64_t offset = SizeArg(info, 1);
  int64_t length = SizeArg(info, 2);
  return [fd, offset, length](SysError* error) { return StartWriteback(fd, offset, length, error), int64_t{0}; };
}

Syscall AllocateCall(const Napi::CallbackInfo& info) {
  int fd = IntArg(info, 0);
  int64_t size = SizeArg(info, 1);
  bool zeroFill = BoolArg(info, 2);
  return [fd, size, zeroFill](SysError* error) { return Allocate(fd, size, zeroFill, error), int64_t{0}; };
}

Syscall TruncateCall(const Napi::CallbackInfo& info) {
  int fd = IntArg(info, 0);
  int64_t size = SizeArg(info, 1);
  return [fd, size](SysError* error) { return Truncate(fd, size, error), int64_t{0}; };
}

Syscall CloseCall(const Napi::CallbackInfo& info) {
  int fd = IntArg(info, 0);
  return [fd](SysError* error) { return Close(fd, error), int64_t{0}; };
}

Syscall SyncDirCall(const Napi::CallbackInfo& info) {
  std::string path = StringArg(info, 0);
  return [path](SysError* error) { return SyncDir(path, error), int64_t{0}; };
}

Napi::Value Crc32Js(const Napi::CallbackInfo& info) {
  Bytes data = BytesArg(info, 0);
  uint32_t initial = info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
  return Napi::Number::New(info.Env(), Crc32(initial, data.data, data.size));
}

Napi::Value CheckFrameCrcsJs(const Napi::CallbackInfo& info) {
  Bytes data = BytesArg(info, 0);
  return Napi::Number::New(info.Env(), static_cast<double>(CheckFrameCrcs(data.data, data.size)));
}

Napi::Value TryLockJs(const Napi::CallbackInfo& info) {
  std::string path = StringArg(info, 0);
  SysError error;
  int fd = TryLock(path.c_str(), &error);
  if (error.failed()) throw MakeSysError(info.Env(), error);
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value SetErrnoNamesJs(const Napi::CallbackInfo& info) {
  if (!info[0].IsObject()) throw Napi::TypeError::New(info.Env(), "argument 0 must be an object");
  SetErrnoNames(info.Env(), info[0].As<Napi::Object>());
  return info.Env().Undefined();
}

Napi::Value UnlockJs(const Napi::CallbackInfo& info) {
  SysError error;
  Unlock(IntArg(info, 0), &error);
  if (error.failed()) throw MakeSysError(info.Env(), error);
  return info.Env().Undefined();
}

// Registers `name` (blocking) and `nameAsync` (promise) for one Syscall builder.
void ExportPair(Napi::Env env, Napi::Object exports, const char* name, Syscall (*build)(const Napi::CallbackInfo&),
                bool returnsNumber, int keepAliveArg = -1) {
  exports.Set(name, Napi::Function::New(env, [build, returnsNumber](const Napi::CallbackInfo& info) {
                return RunNow(info.Env(), build(info), returnsNumber);
              }));
  exports.Set(std::string(name) + "Async", Napi::Function::New(env, [build, returnsNumber, keepAliveArg](const Napi::CallbackInfo& info) {
                Napi::Value keepAlive = keepAliveArg >= 0 ? info[keepAliveArg] : info.Env().Undefined();
                return RunLater(info.Env(), build(info), returnsNumber, keepAlive);
              }));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrnoNames", Napi::Function::New(env, SetErrnoNamesJs));
  exports.Set("crc32", Napi::Function::New(env, Crc32Js));
  exports.Set("checkFrameCrcs", Napi::Function::New(env, CheckFrameCrcsJs));
  exports.Set("tryLock", Napi::Function::New(env, TryLockJs));
  exports.Set("unlock", Napi::Function::New(env, UnlockJs));
  ExportPair(env, exports, "openSegment", OpenSegmentCall, true);
  ExportPair(env, exports, "write", WriteCall, true, 1);
  exports.Set("appendFrames", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                return RunNow(info.Env(), AppendFramesCall(info), true);
              }));
  exports.Set("appendFramesAsync", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                return RunOnWriterOrPool(info.Env(), AppendFramesCall(info), info[1]);
              }));
  ExportPair(env, exports, "datasync", DataSyncCall, false);
  ExportPair(env, exports, "startWriteback", StartWritebackCall, false);
  ExportPair(env, exports, "allocate", AllocateCall, false);
  ExportPair(env, exports, "truncate", TruncateCall, false);
  ExportPair(env, exports, "close", CloseCall, false);
  ExportPair(env, exports, "syncDir", SyncDirCall, false);
  return exports;
}

}  // namespace
}  // namespace segwal

static Napi::Object InitSegwal(Napi::Env env, Napi::Object exports) { return segwal::Init(env, exports); }

NODE_API_MODULE(segwal_native, InitSegwal)
