// Loading an engine file into a session (docs/engine-format.md).
#pragma once
#include <memory>

#include "engine/engine_file.h"
#include "pipeline/session_impl.h"

namespace kiln {

std::unique_ptr<Session::Impl> load_engine(std::shared_ptr<const engine::EngineFile> file,
                                           const SessionOptions& options);

}  // namespace kiln
