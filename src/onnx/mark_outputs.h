// kiln compare --per-layer: a copy of an ONNX model in which every value a
// top-level node computes is also a graph output, so that two engines (kiln
// and ONNX Runtime, or kiln at two optimization levels) can be compared value
// by value, the way Polygraphy's `--onnx-outputs mark all` does.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "kiln/tensor.h"

namespace kiln {

struct MarkedModel {
  std::string bytes;  // the serialized ModelProto
  // Every value a top-level node computes (the model's outputs included), in
  // node order, with the node that computes it.
  struct Tap {
    std::string value, node, op;
  };
  std::vector<Tap> taps;
  size_t model_outputs = 0;  // the model's own outputs come first among the graph outputs
};

// Reads `path` (types come from kiln's shape inference, with `shapes` bound to
// symbolic input dims); values whose element type is unknown, or that are
// sequences or optionals, are not marked. kiln::Error for a model kiln cannot
// read, or one with external data (the copy would not find it).
MarkedModel mark_all_outputs(const std::string& path, const std::map<std::string, Shape>& shapes);

}  // namespace kiln
