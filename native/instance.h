// What the addon keeps per Node environment (the main thread, each worker): Node-API gives one slot.
#pragma once
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

namespace segwal {

class WriterLane;

struct Instance {
  // Indexed by errno: the names Node knows (errors.cc).
  std::vector<std::string> errnoNames;
  // The append path's own thread, made at the first call posted to it (writer_lane.h).
  std::unique_ptr<WriterLane> writer;
  ~Instance();
};

// This environment's instance, made at the first call.
Instance& InstanceOf(Napi::Env env);

// This environment's writer lane, made at the first call; stopped (its thread joined) when the
// environment is torn down, before Node closes the lane's thread-safe function.
WriterLane& WriterOf(Napi::Env env);

}  // namespace segwal
