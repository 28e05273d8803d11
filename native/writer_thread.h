// A thread of the addon's own for the append path, so a commit skips the thread pool's machinery.
#pragma once
#include <uv.h>

#include <cstdint>
#include <functional>

#include "errors.h"

namespace segwal {

// A blocking call to run: returns its numeric result and reports failure through the SysError.
using Syscall = std::function<int64_t(SysError*)>;

// One call handed to the writer thread, and what it returned.
struct WriterJob {
  Syscall call;
  int64_t result = 0;
  SysError error;
  virtual ~WriterJob() = default;
};

// Runs the calls handed to it one at a time, each reported to `done` on the writer thread once it
// returned. It takes a call only when free: a busy thread says so and the caller uses the thread
// pool, so one slow call (another log's fsync) never queues a second behind it. Between calls it
// sleeps on a condition variable; a spin before sleeping was measured and not kept
// (docs/BENCHMARKS.md). No policy: it runs what it is given.
// The thread, mutex and condition variable are libuv's, which Node exports: std::thread and
// std::condition_variable would make the prebuilt addon need a newer libstdc++ than Node 20 does.
class WriterThread {
 public:
  explicit WriterThread(std::function<void(WriterJob*)> done);
  // Finishes the call in hand and the one handed over, if any, then joins the thread.
  ~WriterThread();
  WriterThread(const WriterThread&) = delete;
  WriterThread& operator=(const WriterThread&) = delete;
  // Hands `job` over if the thread has no call running or waiting; false (and `job` untouched) if not.
  bool TryPost(WriterJob* job);

 private:
  static void Main(void* self);
  WriterJob* Take();
  void Run();

  std::function<void(WriterJob*)> done_;
  uv_mutex_t mutex_;
  uv_cond_t wake_;
  WriterJob* next_ = nullptr;
  bool busy_ = false;
  bool stop_ = false;
  uv_thread_t thread_;
};

}  // namespace segwal
