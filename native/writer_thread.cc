#include "writer_thread.h"

#include <cstdlib>

namespace segwal {

WriterThread::WriterThread(std::function<void(WriterJob*)> done) : done_(std::move(done)) {
  // Failing to make a mutex, a condition variable or a thread leaves nothing to fall back to.
  if (uv_mutex_init(&mutex_) != 0 || uv_cond_init(&wake_) != 0 || uv_thread_create(&thread_, Main, this) != 0) std::abort();
}

WriterThread::~WriterThread() {
  uv_mutex_lock(&mutex_);
  stop_ = true;
  uv_cond_signal(&wake_);
  uv_mutex_unlock(&mutex_);
  uv_thread_join(&thread_);
  uv_cond_destroy(&wake_);
  uv_mutex_destroy(&mutex_);
}

bool WriterThread::TryPost(WriterJob* job) {
  uv_mutex_lock(&mutex_);
  bool free = !busy_ && next_ == nullptr && !stop_;
  if (free) {
    next_ = job;
    uv_cond_signal(&wake_);
  }
  uv_mutex_unlock(&mutex_);
  return free;
}

void WriterThread::Main(void* self) { static_cast<WriterThread*>(self)->Run(); }

WriterJob* WriterThread::Take() {
  uv_mutex_lock(&mutex_);
  while (next_ == nullptr && !stop_) uv_cond_wait(&wake_, &mutex_);
  WriterJob* job = next_;
  next_ = nullptr;
  busy_ = job != nullptr;
  uv_mutex_unlock(&mutex_);
  return job;
}

void WriterThread::Run() {
  while (WriterJob* job = Take()) {
    job->result = job->call(&job->error);
    // Free before the caller hears: its next call, made on hearing, finds the thread free.
    uv_mutex_lock(&mutex_);
    busy_ = false;
    uv_mutex_unlock(&mutex_);
    done_(job);
  }
}

}  // namespace segwal
