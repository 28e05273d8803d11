#include "writer_lane.h"

namespace segwal {

struct LaneJob : WriterJob {
  explicit LaneJob(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise::Deferred deferred;
  Napi::ObjectReference keepAlive;
};

WriterLane::WriterLane(Napi::Env env)
    : completions_(Completions::New(env, "segwal:writer", 0, 1, this)),
      thread_(std::make_unique<WriterThread>([this](WriterJob* job) {
        auto* done = static_cast<LaneJob*>(job);
        if (completions_.NonBlockingCall(done) != napi_ok) {
          // The environment is going away: nobody can be told; free without touching JS.
          done->keepAlive.SuppressDestruct();
          delete done;
        }
      })) {
  completions_.Unref(env);  // an idle writer does not keep the process alive
}

WriterLane::~WriterLane() {
  thread_.reset();
  completions_.Release();
}

bool WriterLane::Post(Napi::Env env, Syscall& call, Napi::Value keepAlive, Napi::Promise* promise) {
  auto job = std::make_unique<LaneJob>(env);
  if (!keepAlive.IsUndefined()) job->keepAlive = Napi::Persistent(keepAlive.As<Napi::Object>());
  job->call = std::move(call);
  Napi::Promise settled = job->deferred.Promise();
  if (!thread_->TryPost(job.get())) {
    call = std::move(job->call);
    return false;
  }
  job.release();  // the thread owns it now, then Settle
  if (outstanding_++ == 0) completions_.Ref(env);
  *promise = settled;
  return true;
}

void WriterLane::Settle(Napi::Env env, Napi::Function, WriterLane* lane, LaneJob* job) {
  std::unique_ptr<LaneJob> owned(job);
  if (env == nullptr) {  // torn down with calls outstanding
    owned->keepAlive.SuppressDestruct();
    return;
  }
  if (--lane->outstanding_ == 0) lane->completions_.Unref(env);
  if (owned->error.failed()) {
    owned->deferred.Reject(MakeSysError(env, owned->error).Value());
  } else {
    owned->deferred.Resolve(Napi::Number::New(env, static_cast<double>(owned->result)));
  }
}

}  // namespace segwal
