// The writer thread seen from JavaScript: its calls settle promises on the event loop.
#pragma once
#include <napi.h>

#include <cstddef>
#include <memory>

#include "writer_thread.h"

namespace segwal {

struct LaneJob;

// One per Node environment. A call posted to the writer thread settles its promise on the loop
// through one thread-safe function, which holds the loop open only while calls are outstanding.
class WriterLane {
 public:
  explicit WriterLane(Napi::Env env);
  // Finishes the calls the thread holds, then releases the thread-safe function.
  ~WriterLane();
  // Posts `call` to the writer thread if it is free and sets `*promise`; false (and `call` left as it
  // was) when it is busy. `keepAlive` pins the buffer the call reads and writes.
  bool Post(Napi::Env env, Syscall& call, Napi::Value keepAlive, Napi::Promise* promise);

 private:
  static void Settle(Napi::Env env, Napi::Function, WriterLane* lane, LaneJob* job);
  using Completions = Napi::TypedThreadSafeFunction<WriterLane, LaneJob, Settle>;

  Completions completions_;
  size_t outstanding_ = 0;
  std::unique_ptr<WriterThread> thread_;
};

}  // namespace segwal
