#include "analysis/graph_dot.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <set>
#include <sstream>

#include "ir/epilogue.h"
#include "ir/op_facts.h"

namespace kiln {

namespace {

// Fill colours: one hue per family, light enough for black text.
const char* family_colour(const std::string& family) {
  static const std::map<std::string, const char*> colours = {
      {"conv", "#8fb8de"},      {"matmul", "#b39ddb"},      {"normalization", "#a5d6a7"}, {"activation", "#ffe082"},
      {"pooling", "#80cbc4"},   {"elementwise", "#ffccbc"}, {"shape", "#e0e0e0"},         {"reduction", "#f48fb1"},
      {"recurrent", "#ce93d8"}, {"attention", "#ef9a9a"},   {"layout", "#bcaaa4"},        {"control", "#fff59d"},
      {"other", "#ffffff"}};
  auto it = colours.find(family);
  return it == colours.end() ? "#ffffff" : it->second;
}

const std::vector<std::string>& family_order() {
  static const std::vector<std::string> order = [] {
    std::vector<std::string> v;
    for (OpFamily f : all_op_families()) v.push_back(op_family_name(f));
    return v;
  }();
  return order;
}

// A DOT double-quoted string's body: quotes and backslashes escaped, so a
// node name cannot end the string or start an escape sequence.
std::string quote(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// For HTML-like labels (the legend).
std::string html(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else
      out += c;
  }
  return out;
}

std::string dims_str(const std::vector<int64_t>& v, const char* sep = "x") {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + std::to_string(v[i]);
  return s;
}

// "float 1x64x56x56", "int64 scalar", "float ?" (rank unknown).
std::string type_str(const ValueType& t) {
  std::string s = t.dtype == DType::kUndefined ? "?" : dtype_name(t.dtype);
  if (t.kind == ValueKind::kSequence) s = "seq(" + s + ")";
  if (!t.shape) return s + " ?";
  if (t.shape->empty()) return s + " scalar";
  std::string dims;
  for (size_t i = 0; i < t.shape->size(); ++i) dims += (i ? "x" : "") + (*t.shape)[i].str();
  return s + " " + dims;
}

std::string short_float(float f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", f);
  return buf;
}

bool all_equal(const std::vector<int64_t>& v, int64_t x) {
  return std::all_of(v.begin(), v.end(), [x](int64_t e) { return e == x; });
}

// "3x3", or "2" when every entry is 2 (strides, dilations).
std::string compact(const std::vector<int64_t>& v) {
  if (!v.empty() && all_equal(v, v[0])) return std::to_string(v[0]);
  return dims_str(v);
}

bool is_conv_like(const Node& n) {
  return n.op_type == "Conv" || n.op_type == "ConvTranspose" || n.op_type == "BlockedConv" ||
         n.op_type == "ConvInteger" || n.op_type == "QLinearConv";
}

bool is_pool_like(const Node& n) {
  return n.op_type == "MaxPool" || n.op_type == "AveragePool" || n.op_type == "LpPool" || n.op_type == "BlockedPool";
}

// Conv and pooling windows, written the way people say them:
// "k3x3 s2 p1 g32 d2", defaults left out.
std::string window_attrs(const Node& n) {
  std::vector<std::string> parts;
  std::vector<int64_t> kernel = n.attr_ints("kernel_shape");
  if (kernel.empty() && is_conv_like(n) && n.has_input(1) && n.inputs[1]->type.is_static()) {
    const Shape w = n.inputs[1]->type.static_shape();
    for (size_t i = 2; i < w.size(); ++i) kernel.push_back(w[i]);
  }
  if (!kernel.empty()) parts.push_back("k" + dims_str(kernel));
  const auto strides = n.attr_ints("strides");
  if (!strides.empty() && !all_equal(strides, 1)) parts.push_back("s" + compact(strides));
  const auto pads = n.attr_ints("pads");
  if (!pads.empty() && !all_equal(pads, 0)) parts.push_back("p" + compact(pads));
  const std::string auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET") parts.push_back(auto_pad);
  const auto dilations = n.attr_ints("dilations");
  if (!dilations.empty() && !all_equal(dilations, 1)) parts.push_back("d" + compact(dilations));
  if (n.attr_int("group", 1) != 1) parts.push_back("g" + std::to_string(n.attr_int("group", 1)));
  if (n.attr_int("ceil_mode", 0) != 0) parts.push_back("ceil");
  if (n.has_attr("mode")) parts.push_back(n.attr_string("mode", ""));
  if (n.attr_int("global", 0) != 0) parts.push_back("global");
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : " ") + p;
  return s;
}

// Defaults a reader does not need spelled out on the most common ops.
bool is_default(const Node& n, const std::string& name, const Attribute& a) {
  if (n.op_type == "Gemm") {
    if ((name == "alpha" || name == "beta") && a.kind == Attribute::Kind::kFloat) return a.f == 1.0f;
    if ((name == "transA" || name == "transB") && a.kind == Attribute::Kind::kInt) return a.i == 0;
  }
  return false;
}

// Any other op: its small attributes, "name=value", at most four; kiln's
// bookkeeping attributes ("kiln.*") are shown elsewhere or not at all.
std::string generic_attrs(const Node& n) {
  std::vector<std::string> parts;
  for (const auto& [name, a] : n.attrs) {
    if (name.rfind("kiln.", 0) == 0 || is_default(n, name, a)) continue;
    std::string v;
    switch (a.kind) {
      case Attribute::Kind::kInt: v = std::to_string(a.i); break;
      case Attribute::Kind::kFloat: v = short_float(a.f); break;
      case Attribute::Kind::kString:
        if (a.s.size() <= 16) v = a.s;
        break;
      case Attribute::Kind::kInts:
        if (a.ints.size() <= 8) v = "[" + dims_str(a.ints, ",") + "]";
        break;
      case Attribute::Kind::kGraph:
        if (a.g) v = std::to_string(a.g->nodes.size()) + " nodes";
        break;
      default: break;
    }
    if (v.empty()) continue;
    if (parts.size() == 4) {
      parts.push_back("…");
      break;
    }
    parts.push_back(name + "=" + v);
  }
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) s += (i == 0 ? "" : i % 2 ? " " : "\n") + parts[i];
  return s;
}

std::string key_attrs(const Node& n) {
  if (is_conv_like(n) || is_pool_like(n)) return window_attrs(n);
  return generic_attrs(n);
}

// The conventional name of input i for a few ops whose weights matter to a
// reader; "#i" otherwise.
std::string input_label(const Node& n, size_t i) {
  static const std::map<std::string, std::vector<std::string>> names = {
      {"Conv", {"X", "W", "B"}},
      {"BlockedConv", {"X", "W", "B", "S"}},
      {"ConvTranspose", {"X", "W", "B"}},
      {"Gemm", {"A", "B", "C"}},
      {"MatMul", {"A", "B"}},
      {"BatchNormalization", {"X", "scale", "B", "mean", "var"}},
      {"LayerNormalization", {"X", "scale", "B"}},
      {"LSTM", {"X", "W", "R", "B", "seq", "h0", "c0", "P"}},
      {"GRU", {"X", "W", "R", "B", "seq", "h0"}},
      {"RNN", {"X", "W", "R", "B", "seq", "h0"}},
  };
  auto it = names.find(n.op_type);
  if (it != names.end() && i < it->second.size()) return it->second[i];
  return "#" + std::to_string(i);
}

// "W 64x3x7x7", or the value of a small constant: "#1 = 2", "#1 = [0,2,1]".
std::string weight_line(const Node& n, size_t i, const Tensor& t) {
  std::string s = input_label(n, i);
  const int64_t numel = t.numel();
  if (numel <= 4 && (t.dtype() == DType::kFloat32 || t.dtype() == DType::kInt64)) {
    std::string vals;
    for (int64_t k = 0; k < numel; ++k) {
      const std::string e =
          t.dtype() == DType::kFloat32 ? short_float(t.data<float>()[k]) : std::to_string(t.data<int64_t>()[k]);
      vals += (k ? "," : "") + e;
    }
    return s + " = " + (t.shape().size() == 0 ? vals : "[" + vals + "]");
  }
  return s + " " + (t.shape().empty() ? "scalar" : dims_str(t.shape()));
}

std::vector<std::string> split_path(const std::string& name) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : name) {
    if (c == '/') {
      if (!cur.empty()) parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) parts.push_back(cur);
  return parts;
}

// Long names keep their tail, which says the most ("…/conv1/Conv").
std::string shorten(const std::string& s, size_t max = 36) {
  if (s.size() <= max) return s;
  return "…" + s.substr(s.size() - (max - 1));
}

// "fused: Conv+BatchNormalization+Relu" from the origins' op types, or
// "fused: 3 nodes" when they are not known.
std::string fused_line(const Node& n, const DotOptions& o) {
  std::vector<std::string> ops;
  for (const std::string& origin : n.origins) {
    auto it = o.origin_ops.find(origin);
    if (it == o.origin_ops.end()) return "fused: " + std::to_string(n.origins.size()) + " nodes";
    ops.push_back(it->second);
  }
  std::string s = "fused:";
  const size_t shown = std::min<size_t>(ops.size(), 6);
  for (size_t i = 0; i < shown; ++i) s += (i ? "+" : " ") + ops[i];
  if (ops.size() > shown) s += " +" + std::to_string(ops.size() - shown) + " more";
  return s;
}

struct Cluster {
  std::string path;  // "/features/denseblock1"
  std::string label;
  std::map<std::string, Cluster> children;
  std::vector<size_t> nodes;
  // --collapse: children drawn as one box each group of repeats.
  std::set<std::string> hidden_children;
  std::vector<std::pair<std::string, std::string>> boxes;  // DOT id, label
  size_t size() const { return nodes.size() + children.size() - hidden_children.size() + boxes.size(); }
};

// The ops of a cluster in order, nested clusters in parentheses: equal
// signatures mark repeated blocks.
std::string signature(const Graph& g, const Cluster& c) {
  std::string s;
  for (size_t i : c.nodes) s += g.nodes[i]->op_type + ",";
  for (const auto& [name, child] : c.children) s += "(" + signature(g, child) + ")";
  return s;
}

size_t first_node(const Cluster& c) {
  size_t first = c.nodes.empty() ? SIZE_MAX : c.nodes.front();
  for (const auto& [name, child] : c.children) first = std::min(first, first_node(child));
  return first;
}

void all_nodes(const Cluster& c, std::vector<size_t>& out) {
  out.insert(out.end(), c.nodes.begin(), c.nodes.end());
  for (const auto& [name, child] : c.children) all_nodes(child, out);
}

// An identifier safe in a DOT id: letters, digits and '_' kept, others '_'.
std::string id_part(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

// The graphs a node holds (If's branches, Loop's and Scan's body), with the
// name of the attribute each comes from ("then_branch", "body", "graphs_1").
std::vector<std::pair<std::string, const Graph*>> bodies_of(const Node& n) {
  std::vector<std::pair<std::string, const Graph*>> out;
  for (const auto& [name, a] : n.attrs) {
    if (a.kind == Attribute::Kind::kGraph && a.g) out.emplace_back(name, a.g.get());
    if (a.kind == Attribute::Kind::kGraphs)
      for (size_t k = 0; k < a.graphs.size(); ++k)
        if (a.graphs[k]) out.emplace_back(name + "_" + std::to_string(k), a.graphs[k].get());
  }
  return out;
}

// Writes one graph: the top level, or (with `outer`) a control-flow body
// inside its node's cluster, its DOT ids prefixed so they stay unique
// ("n3_then_branch_n0"). Edges are collected by the top-level writer and
// written after every node, so that an edge from an outer node into a body
// cannot make Graphviz define that node inside the body's cluster.
class DotWriter {
 public:
  DotWriter(const Graph& g, const DotOptions& o, DotStats& st) : g_(g), o_(o), st_(st), top_(this) {}

  std::string write() {
    out_ << "digraph kiln {\n";
    prepare();
    st_.large = g_.nodes.size() - static_cast<size_t>(st_.collapsed) > kEdgeLabelMaxNodes;
    st_.edge_labels = o_.edge_labels == DotOptions::EdgeLabels::kOn ||
                      (o_.edge_labels == DotOptions::EdgeLabels::kAuto && !st_.large);
    out_ << "  graph [rankdir=TB newrank=true compound=true nodesep=0.25 ranksep=0.3 fontname=\"Helvetica\" "
            "fontsize=12";
    // Measured on densenet121 (974 edges, many long ones into its Concats):
    // spline routing and unbounded crossing minimization took most of a
    // minute; straight edges and capped iterations take seconds and the
    // picture stays readable (docs/graph.md).
    if (st_.large) out_ << " splines=line nslimit=0.2 nslimit1=0.2 mclimit=0.1 remincross=false";
    if (st_.large && o_.large_max_inches > 0)
      out_ << " size=\"" << o_.large_max_inches << "," << o_.large_max_inches << "\"";
    if (!o_.title.empty()) out_ << " labelloc=t label=\"" << quote(o_.title) << "\"";
    out_ << "];\n";
    out_ << "  node [shape=box style=\"rounded,filled\" fontname=\"Helvetica\" fontsize=10 margin=\"0.08,0.03\"];\n";
    out_ << "  edge [fontname=\"Helvetica\" fontsize=8 color=\"#555555\" arrowsize=0.6];\n";
    write_scope(1);
    out_ << edges_.str();
    if (o_.legend) write_legend();
    out_ << "}\n";
    return out_.str();
  }

 private:
  // A body's writer: same options, stats, stream and edge list as `outer`.
  DotWriter(const Graph& g, const DotWriter& outer, std::string prefix)
      : g_(g), o_(outer.o_), st_(outer.st_), top_(outer.top_), outer_(&outer), prefix_(std::move(prefix)) {}

  std::string node_id(size_t i) const { return prefix_ + "n" + std::to_string(i); }
  std::string input_id(size_t i) const { return prefix_ + "in" + std::to_string(i); }
  std::string output_id(size_t i) const { return prefix_ + "out" + std::to_string(i); }
  std::ostringstream& out() { return top_->out_; }

  void prepare() {
    drawn_id_.resize(g_.nodes.size());
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      drawn_id_[i] = node_id(i);
      for (const Value* v : g_.nodes[i]->outputs)
        if (v) producer_[v] = i;
    }
    root_ = build_clusters();
    if (o_.collapse) collapse(root_);
  }

  // Inputs, nodes (in their clusters, bodies nested in their nodes'),
  // outputs; edges go to the top-level list.
  void write_scope(int depth) {
    write_inputs(depth);
    write_cluster(root_, depth, true, "");
    write_outputs(depth);
    write_edges();
  }

  void write_inputs(int depth) {
    const std::string pad(static_cast<size_t>(depth) * 2, ' ');
    for (size_t i = 0; i < g_.inputs.size(); ++i) {
      const Value* v = g_.inputs[i];
      if (v->initializer) continue;  // folded into its readers like any weight
      out() << pad << input_id(i) << " [shape=ellipse style=filled fillcolor=\"#c8e6c9\" label=\""
            << (outer_ ? "" : "input ") << quote(v->name) << "\\n"
            << quote(type_str(v->type)) << "\"];\n";
      if (!outer_) ++st_.inputs;
    }
  }

  void write_outputs(int depth) {
    const std::string pad(static_cast<size_t>(depth) * 2, ' ');
    for (size_t i = 0; i < g_.outputs.size(); ++i) {
      const Value* v = g_.outputs[i];
      out() << pad << output_id(i) << " [shape=ellipse style=filled fillcolor=\"#ffcdd2\" label=\""
            << (outer_ ? "" : "output ") << quote(v->name) << "\\n"
            << quote(type_str(v->type)) << "\"];\n";
      if (!outer_) ++st_.outputs;
    }
  }

  // The cluster path of node i: its name's directories, up to the depth.
  std::vector<std::string> cluster_path(const Node& n) const {
    std::vector<std::string> parts = split_path(n.name);
    if (!parts.empty()) parts.pop_back();  // the node's own name
    if (parts.size() > static_cast<size_t>(std::max(o_.cluster_depth, 0)))
      parts.resize(static_cast<size_t>(std::max(o_.cluster_depth, 0)));
    return parts;
  }

  Cluster build_clusters() const {
    Cluster root;
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      Cluster* c = &root;
      for (const std::string& part : cluster_path(*g_.nodes[i])) {
        Cluster& child = c->children[part];
        if (child.path.empty()) {
          child.path = c->path + "/" + part;
          child.label = part;
        }
        c = &child;
      }
      c->nodes.push_back(i);
    }
    return root;
  }

  // Groups c's children by signature; in each group of two or more the
  // first (in graph order) is drawn and the rest become one box.
  void collapse(Cluster& c) {
    std::map<std::string, std::vector<std::string>> groups;  // signature -> child names
    for (const auto& [name, child] : c.children)
      if (!child.children.empty() || child.nodes.size() > 1) groups[signature(g_, child)].push_back(name);
    for (auto& [sig, names] : groups) {
      if (names.size() < 2) continue;
      std::sort(names.begin(), names.end(), [&](const std::string& a, const std::string& b) {
        return first_node(c.children.at(a)) < first_node(c.children.at(b));
      });
      const std::string id = prefix_ + "c" + std::to_string(st_.collapsed_boxes++);
      size_t per_block = 0;
      for (size_t k = 1; k < names.size(); ++k) {
        std::vector<size_t> hidden;
        all_nodes(c.children.at(names[k]), hidden);
        per_block = hidden.size();
        for (size_t i : hidden) drawn_id_[i] = id;
        st_.collapsed += static_cast<int>(hidden.size());
        c.hidden_children.insert(names[k]);
      }
      const std::string label = std::to_string(names.size() - 1) + " more like " + names[0] + "\n" + names[1] +
                                (names.size() > 2 ? " ... " + names.back() : "") + "\n(" + std::to_string(per_block) +
                                " nodes each)";
      c.boxes.emplace_back(id, label);
    }
    for (auto& [name, child] : c.children)
      if (!c.hidden_children.count(name)) collapse(child);
  }

  // `frame`: the path of the innermost cluster drawn around c, which node
  // names are shown relative to.
  void write_cluster(const Cluster& c, int depth, bool is_root, const std::string& frame) {
    const std::string pad(static_cast<size_t>(depth) * 2, ' ');
    std::ostringstream& os = out();
    // A cluster of a single node adds a frame and no information.
    const bool framed = !is_root && c.size() > 1;
    if (framed) {
      ++st_.clusters;
      os << pad << "subgraph cluster_" << st_.clusters << " {\n";
      os << pad << "  label=\"" << quote(c.label) << "\" tooltip=\"" << quote(c.path)
         << "\" style=\"rounded,filled\" color=\"#9e9e9e\" fillcolor=\"" << (depth % 2 ? "#f5f5f5" : "#fcfcfc")
         << "\" fontsize=10;\n";
    }
    const int inner = framed ? depth + 1 : depth;
    const std::string inner_frame = framed ? c.path : frame;
    for (size_t i : c.nodes) write_node(i, inner, inner_frame);
    for (const auto& [name, child] : c.children)
      if (!c.hidden_children.count(name)) write_cluster(child, inner, false, inner_frame);
    for (const auto& [id, label] : c.boxes)
      os << pad << "  " << id << " [label=\"" << quote(label)
         << "\" shape=box3d style=filled fillcolor=\"#eeeeee\" class=\"collapsed\"];\n";
    if (framed) os << pad << "}\n";
  }

  void write_node(size_t i, int depth, const std::string& frame) {
    const Node& n = *g_.nodes[i];
    const std::string family = op_family(n);
    std::string label = n.domain.empty() || n.domain == "ai.onnx" ? n.op_type : n.domain + "." + n.op_type;
    // The name relative to its cluster; left out when it only repeats the op.
    std::string name = n.name;
    if (!frame.empty() && name.rfind(frame + "/", 0) == 0) name = name.substr(frame.size() + 1);
    if (name.size() > 1 && name[0] == '/') name = name.substr(1);
    if (!name.empty() && name != n.op_type) label += "\n" + shorten(name);
    const std::string attrs = key_attrs(n);
    if (!attrs.empty()) label += "\n" + attrs;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const Value* v = resolve(n.inputs[k]);
      if (v && v->initializer) label += "\n" + weight_line(n, k, *v->initializer);
    }
    const bool fused = n.origins.size() > 1;
    if (fused) label += "\n" + fused_line(n, o_);
    if (has_epilogue(n)) label += "\nepilogue: " + epilogue_str(n);
    if (!st_.edge_labels)
      for (const Value* v : n.outputs)
        if (v) label += "\n-> " + type_str(v->type);
    const std::string pad(static_cast<size_t>(depth) * 2, ' ');
    std::ostringstream& os = out();
    os << pad << node_id(i) << " [label=\"" << quote(label) << "\" fillcolor=\"" << family_colour(family) << "\"";
    os << " tooltip=\"" << quote(n.name.empty() ? n.op_type : n.name) << "\"";
    if (fused) {
      os << " peripheries=2 penwidth=2";
      ++st_.fused;
    }
    if (n.domain == kKilnDomain) os << " style=\"rounded,filled,bold\" color=\"#5d4037\"";
    os << " class=\"op-" << family << (fused ? " fused" : "") << (outer_ ? " body" : "") << "\"";
    os << "];\n";
    ++(outer_ ? st_.body_nodes : st_.nodes);
    write_bodies(i, depth);
  }

  // Each body of a control-flow node as a dashed cluster next to it, its
  // nodes drawn like the top level's; its outputs lead (dashed) into the
  // node, whose outputs they become.
  void write_bodies(size_t i, int depth) {
    const Node& n = *g_.nodes[i];
    const std::string pad(static_cast<size_t>(depth) * 2, ' ');
    for (const auto& [attr, body] : bodies_of(n)) {
      ++st_.clusters;
      ++st_.bodies;
      const std::string node_name = n.name.empty() ? n.op_type : shorten(n.name);
      out() << pad << "subgraph cluster_" << st_.clusters << " {\n";
      out() << pad << "  label=\""
            << quote(attr + " of " + node_name + " (" + std::to_string(body->nodes.size()) + " nodes)")
            << "\" tooltip=\"" << quote(n.op_type + " " + n.name + ": " + attr)
            << "\" style=\"dashed,rounded\" color=\"#f9a825\" class=\"body\" fontsize=10;\n";
      DotWriter inner(*body, *this, drawn_id_[i] + "_" + id_part(attr) + "_");
      inner.prepare();
      inner.write_scope(depth + 1);
      out() << pad << "}\n";
      for (size_t k = 0; k < body->outputs.size(); ++k) {
        top_->edges_ << "  " << inner.output_id(k) << " -> " << drawn_id_[i] << " [style=dashed color=\"#f9a825\"];\n";
        ++st_.edges;
      }
    }
  }

  // The value a body's outer-scope reference stands for (itself otherwise).
  const Value* resolve(const Value* v) const {
    if (!v || !v->is_outer) return v;
    for (const Graph* p = g_.parent; p; p = p->parent) {
      const Value* pv = p->find(v->name);
      if (pv && !pv->is_outer) return pv;
    }
    return v;
  }

  // The DOT id of what produces `v` in this scope or an enclosing one, ""
  // for weights (drawn in their readers) and values from nowhere.
  std::string source_of(const Value* v) const {
    if (!v || v->initializer) return "";
    if (v->is_outer) return outer_ ? outer_->source_by_name(v->name) : "";
    auto it = producer_.find(v);
    if (it != producer_.end()) return drawn_id_[it->second];
    for (size_t i = 0; i < g_.inputs.size(); ++i)
      if (g_.inputs[i] == v) return input_id(i);
    return "";
  }

  std::string source_by_name(const std::string& name) const {
    const Value* v = g_.find(name);
    if (!v) return outer_ ? outer_->source_by_name(name) : "";
    return source_of(v);
  }

  // Edges go from a value's producer (a node or a graph input) to each node
  // reading it: one edge per producer and reader, however many values pass.
  void write_edges() {
    // Collapsed blocks: one edge per pair of boxes, none inside a box.
    std::set<std::pair<std::string, std::string>> drawn;
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      const std::string& to = drawn_id_[i];
      for (const Value* v : g_.nodes[i]->inputs) {
        const std::string from = source_of(v);
        if (from.empty() || from == to || !drawn.insert({from, to}).second) continue;
        edge(from, to, *v);
      }
    }
    for (size_t i = 0; i < g_.outputs.size(); ++i) {
      const std::string from = source_of(g_.outputs[i]);
      if (!from.empty()) edge(from, output_id(i), *g_.outputs[i]);
    }
  }

  void edge(const std::string& from, const std::string& to, const Value& v) {
    std::ostringstream& e = top_->edges_;
    e << "  " << from << " -> " << to << " [";
    if (st_.edge_labels) e << "label=\"" << quote(type_str(v.type)) << "\" ";
    e << "tooltip=\"" << quote(v.name + ": " + type_str(v.type)) << "\"];\n";
    ++st_.edges;
  }

  // The op families of this graph's nodes and its bodies' nodes.
  static void families(const Graph& g, std::set<std::string>& present, bool& kiln_op) {
    for (const auto& n : g.nodes) {
      present.insert(op_family(*n));
      kiln_op |= n->domain == kKilnDomain;
      for (const auto& [attr, body] : bodies_of(*n)) families(*body, present, kiln_op);
    }
  }

  // One node, an HTML-like table: the families present in this graph and
  // what the border styles mean.
  void write_legend() {
    std::set<std::string> present;
    bool kiln_op = false;
    families(g_, present, kiln_op);
    out_ << "  legend [shape=plaintext style=\"\" margin=0 label=<<table border=\"0\" cellborder=\"1\" "
            "cellspacing=\"0\" cellpadding=\"3\"><tr><td><b>op family</b></td></tr>";
    for (const std::string& f : family_order())
      if (present.count(f)) out_ << "<tr><td bgcolor=\"" << family_colour(f) << "\">" << html(f) << "</td></tr>";
    if (st_.fused) out_ << "<tr><td>double border: fused node</td></tr>";
    if (kiln_op) out_ << "<tr><td>bold border: kiln op</td></tr>";
    if (st_.bodies) out_ << "<tr><td>dashed boxes: If/Loop/Scan bodies</td></tr>";
    out_ << "<tr><td>ellipses: graph inputs, outputs</td></tr></table>>];\n";
    st_.legend = 1;
  }

  const Graph& g_;
  const DotOptions& o_;
  DotStats& st_;
  DotWriter* top_;                    // the top-level writer: stream and edges
  const DotWriter* outer_ = nullptr;  // a body's enclosing graph's writer
  std::string prefix_;                // of this graph's DOT ids
  std::ostringstream out_;            // top level only
  std::ostringstream edges_;          // top level only
  Cluster root_;
  std::vector<std::string> drawn_id_;        // per graph node: its DOT id, or its collapsed box's
  std::map<const Value*, size_t> producer_;  // value -> the node writing it (not Value::producer:
                                             // hand-built bodies may not be linked)
};

}  // namespace

std::string op_family(const Node& n) {
  const OpFacts* facts = op_facts(n);
  return op_family_name(facts ? facts->family : OpFamily::kOther);
}

std::string graph_to_dot(const Graph& g, const DotOptions& options, DotStats* stats) {
  DotStats local;
  DotStats& st = stats ? *stats : local;
  st = DotStats{};
  return DotWriter(g, options, st).write();
}

}  // namespace kiln
