// Loading an engine file into a session (docs/engine-format.md).
#pragma once
#include <memory>

#include "engine/engine_file.h"
#include "pipeline/session_impl.h"

namespace kiln {

// `keep_weights`: the stored weights stay in the graph even where a kernel
// owns a copy (a session lets them go); kiln export-onnx writes them.
std::unique_ptr<Session::Impl> load_engine(std::shared_ptr<const engine::EngineFile> file,
                                           const SessionOptions& options, bool keep_weights = false);

}  // namespace kiln
