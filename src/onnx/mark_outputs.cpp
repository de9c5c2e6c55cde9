#include "onnx/mark_outputs.h"

#include <filesystem>
#include <unordered_set>

#include "core/file.h"
#include "ir/infer.h"
#include "kiln/error.h"
#include "onnx/import.h"
#include "onnx/tensor_proto.h"

namespace kiln {

MarkedModel mark_all_outputs(const std::string& path, const std::map<std::string, Shape>& shapes) {
  // One read: kiln's importer checks the bytes defensively first; the
  // protobuf parse below then only re-reads what it accepted.
  const std::string bytes = read_file(path);
  const std::string dir = std::filesystem::path(path).parent_path().string();
  Model model = load_onnx_bytes(bytes.data(), bytes.size(), dir.empty() ? "." : dir, path);
  Graph& g = *model.graph;
  try {
    bind_input_shapes(g, shapes);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  std::vector<std::string> unsupported;  // still marked when their types are known
  infer_graph(g, &unsupported);

  onnx::ModelProto proto;
  if (!proto.ParseFromString(bytes)) throw Error(path + ": not a valid ONNX ModelProto");
  onnx::GraphProto* gp = proto.mutable_graph();
  for (const onnx::TensorProto& t : gp->initializer())
    if (t.data_location() == onnx::TensorProto::EXTERNAL)
      throw Error(path + ": initializer '" + t.name() +
                  "' has external data; per-layer comparison needs a model with its weights inside");

  std::unordered_set<std::string> outputs;
  for (const onnx::ValueInfoProto& o : gp->output()) outputs.insert(o.name());
  MarkedModel marked;
  marked.model_outputs = static_cast<size_t>(gp->output_size());
  for (const onnx::NodeProto& n : gp->node()) {
    for (const std::string& name : n.output()) {
      if (name.empty()) continue;
      const Value* v = g.find(name);
      if (!outputs.count(name)) {
        if (!v || v->type.kind != ValueKind::kTensor || v->type.dtype == DType::kUndefined) continue;
        onnx::ValueInfoProto* o = gp->add_output();
        o->set_name(name);
        o->mutable_type()->mutable_tensor_type()->set_elem_type(static_cast<int32_t>(v->type.dtype));
        outputs.insert(name);
      }
      marked.taps.push_back({name, n.name(), n.op_type()});
    }
  }
  if (!proto.SerializeToString(&marked.bytes)) throw Error(path + ": cannot serialize the marked model");
  return marked;
}

}  // namespace kiln
