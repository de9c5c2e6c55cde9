// --shapes-sweep SPEC for kiln bench (like benchmark_app's -pcseq): the input
// shapes to time one after another with one session.
//
//   SPEC  := GROUP (';' GROUP)*          inputs swept together, step by step
//   GROUP := NAME ':' ITEM (',' ITEM)*   the shapes of one input, in order
//   ITEM  := SHAPE | SHAPE '..' SHAPE    a shape, or a range of shapes
//   SHAPE := DIM ('x' DIM)*
//
// A range counts up by 1 from its first shape to its last; the dims that
// differ between the two grow together, so they must grow by the same amount
// ("1x16..4x19" is 1x16, 2x17, 3x18, 4x19). Other steps are written as lists.
#include <string>
#include <vector>

#include "cli.h"

namespace kiln::cli {

namespace {

const std::string kFlag = "--shapes-sweep";
// More shapes than anyone times in one process; catches "1x8..100000000x8".
constexpr int64_t kMaxSteps = 10000;

// Splits at every `sep`, keeping empty pieces (so that "a,,b" can be refused).
std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t end = text.find(sep, start);
    out.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return out;
    start = end + 1;
  }
}

std::vector<Shape> expand_range(const std::string& item, size_t dots) {
  std::string first_text = item.substr(0, dots);
  std::string last_text = item.substr(dots + 2);
  if (first_text.empty() || last_text.empty())
    throw Error(kFlag + ": range '" + item + "' needs a first and a last shape (e.g. 1x3x224x224..8x3x224x224)");
  Shape first = parse_dims(first_text, kFlag, item);
  Shape last = parse_dims(last_text, kFlag, item);
  if (first.size() != last.size())
    throw Error(kFlag + ": range '" + item + "': its ends have different ranks (" + std::to_string(first.size()) +
                " and " + std::to_string(last.size()) + ")");
  int64_t steps = 0;
  size_t growing_dim = 0;
  for (size_t i = 0; i < first.size(); ++i) {
    if (last[i] < first[i])
      throw Error(kFlag + ": range '" + item + "': dim " + std::to_string(i) + " goes down (" +
                  std::to_string(first[i]) + " to " + std::to_string(last[i]) +
                  "); a range counts up, list other orders with ','");
    int64_t growth = last[i] - first[i];
    if (growth == 0) continue;
    if (steps != 0 && growth != steps)
      throw Error(kFlag + ": range '" + item + "': dims " + std::to_string(growing_dim) + " and " + std::to_string(i) +
                  " grow by " + std::to_string(steps) + " and " + std::to_string(growth) +
                  "; dims of one range grow together by 1 a step, so they must grow by the same amount "
                  "(list other combinations with ',')");
    steps = growth;
    growing_dim = i;
  }
  if (steps >= kMaxSteps)
    throw Error(kFlag + ": range '" + item + "' has " + std::to_string(steps + 1) + " shapes, more than " +
                std::to_string(kMaxSteps));
  std::vector<Shape> out;
  for (int64_t k = 0; k <= steps; ++k) {
    Shape s = first;
    for (size_t i = 0; i < s.size(); ++i)
      if (last[i] != first[i]) s[i] += k;
    out.push_back(s);
  }
  return out;
}

// "NAME:ITEM,ITEM,..." -> the input's name and its shapes in order.
std::pair<std::string, std::vector<Shape>> parse_group(const std::string& group) {
  // Input names may contain ':' (TensorFlow's "input:0"); dims never do.
  size_t colon = group.rfind(':');
  if (colon == std::string::npos || colon == 0)
    throw Error(kFlag + ": '" + group + "' is not NAME:SHAPES (e.g. input:1x3x224x224..8x3x224x224)");
  std::string name = group.substr(0, colon);
  if (name.find("..") != std::string::npos)
    throw Error(kFlag + ": '" + group + "': a range has no step size (it counts up by 1); list other steps with ','");
  std::vector<Shape> shapes;
  for (const std::string& item : split(group.substr(colon + 1), ',')) {
    if (item.empty()) throw Error(kFlag + ": '" + group + "' has an empty shape");
    size_t dots = item.find("..");
    if (dots == std::string::npos) {
      shapes.push_back(parse_dims(item, kFlag, item));
      continue;
    }
    for (Shape& s : expand_range(item, dots)) shapes.push_back(std::move(s));
    if (static_cast<int64_t>(shapes.size()) > kMaxSteps)
      throw Error(kFlag + ": '" + name + "' has more than " + std::to_string(kMaxSteps) + " shapes");
  }
  return {name, shapes};
}

}  // namespace

ShapeSweep parse_shape_sweep(const std::string& spec) {
  ShapeSweep sweep;
  std::vector<std::vector<Shape>> per_input;
  for (const std::string& group : split(spec, ';')) {
    if (group.empty()) continue;
    auto [name, shapes] = parse_group(group);
    for (const std::string& seen : sweep.names)
      if (seen == name) throw Error(kFlag + ": input '" + name + "' is swept twice");
    if (!per_input.empty() && shapes.size() != per_input[0].size())
      throw Error(kFlag + ": '" + sweep.names[0] + "' has " + std::to_string(per_input[0].size()) + " shapes and '" +
                  name + "' has " + std::to_string(shapes.size()) +
                  "; inputs swept together need the same number of shapes");
    sweep.names.push_back(name);
    per_input.push_back(std::move(shapes));
  }
  if (sweep.names.empty()) throw Error(kFlag + ": no shapes in '" + spec + "'");
  for (size_t k = 0; k < per_input[0].size(); ++k) {
    std::vector<Shape> step;
    for (const auto& shapes : per_input) step.push_back(shapes[k]);
    sweep.steps.push_back(std::move(step));
  }
  return sweep;
}

std::string sweep_step_str(const ShapeSweep& sweep, size_t step) {
  std::string s;
  for (size_t i = 0; i < sweep.names.size(); ++i) {
    if (i) s += ',';
    const Shape& shape = sweep.steps[step][i];
    s += sweep.names[i] + ':' + (shape.empty() ? "" : shape_str(shape));
  }
  return s;
}

}  // namespace kiln::cli
