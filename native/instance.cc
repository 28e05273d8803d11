#include "instance.h"

#include "writer_lane.h"

namespace segwal {

Instance::~Instance() = default;

Instance& InstanceOf(Napi::Env env) {
  Instance* instance = env.GetInstanceData<Instance>();
  if (instance == nullptr) {
    instance = new Instance();
    env.SetInstanceData(instance);  // deleted when the environment is torn down
  }
  return *instance;
}

WriterLane& WriterOf(Napi::Env env) {
  Instance& instance = InstanceOf(env);
  if (instance.writer == nullptr) {
    instance.writer = std::make_unique<WriterLane>(env);
    // Cleanup hooks run last-added first: this one before the hook of the lane's thread-safe function.
    env.AddCleanupHook([&instance] { instance.writer.reset(); });
  }
  return *instance.writer;
}

}  // namespace segwal
