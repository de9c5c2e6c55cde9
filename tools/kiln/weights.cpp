// kiln weights FILE: the tensors of a PyTorch checkpoint (torch.save),
// .safetensors or .wts file, with their dtypes (PyTorch's spelling), shapes
// and byte sizes, read without Python (include/kiln/weights.h). The table
// also lists the non-tensor entries (epoch, learning rate, ...); the JSON is
// a list of {name, dtype, shape, bytes}, one per tensor.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "kiln/weights.h"

namespace kiln::cli {

namespace {

struct WeightsArgs {
  std::string file;
  std::string format = "table";
};

void print_json(const WeightMap& m) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const NamedTensor& t : m.tensors)
    list.push_back({{"name", t.name},
                    {"dtype", dtype_numpy_name(t.tensor.dtype())},
                    {"shape", t.tensor.shape()},
                    {"bytes", t.tensor.nbytes()}});
  // Names come from the file: invalid UTF-8 is replaced rather than fatal.
  std::printf("%s\n", json_text(list).c_str());
}

void print_table(const WeightMap& m) {
  size_t name_width = 4;
  for (const NamedTensor& t : m.tensors) name_width = std::max(name_width, t.name.size());
  int w = static_cast<int>(std::min<size_t>(name_width, 80));
  std::printf("%-*s  %-8s  %-20s  %12s\n", w, "name", "dtype", "shape", "bytes");
  uint64_t total = 0;
  for (const NamedTensor& t : m.tensors) {
    std::string shape = "[" + shape_str(t.tensor.shape()) + "]";
    if (t.tensor.rank() == 0) shape = "[]";
    std::printf("%-*s  %-8s  %-20s  %12zu\n", w, t.name.c_str(), dtype_numpy_name(t.tensor.dtype()).c_str(),
                shape.c_str(), t.tensor.nbytes());
    total += t.tensor.nbytes();
  }
  std::printf("%zu tensors, %llu bytes (%s)\n", m.tensors.size(), static_cast<unsigned long long>(total),
              weights_format_name(m.format).c_str());
  if (m.values.empty()) return;
  std::printf("\nother entries\n");
  for (const WeightValue& v : m.values) std::printf("  %s (%s): %s\n", v.name.c_str(), v.type.c_str(), v.value.c_str());
}

}  // namespace

void add_weights_command(CLI::App& app) {
  auto args = std::make_shared<WeightsArgs>();
  CLI::App* cmd = app.add_subcommand(
      "weights", "List the tensors of a PyTorch checkpoint (torch.save zip), .safetensors or .wts file");
  cmd->add_option("file", args->file, "The weights file (its format is detected from its content)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--format", args->format, "Output: table or json (a list of {name, dtype, shape, bytes})")
      ->check(CLI::IsMember({"table", "json"}));
  cmd->callback([args] {
    WeightMap m = load_weights(args->file);
    if (args->format == "json")
      print_json(m);
    else
      print_table(m);
  });
}

}  // namespace kiln::cli
