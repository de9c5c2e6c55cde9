// Runs one op on given tensors through the real pipeline (schema resolution,
// shape inference, kernel creation, execution), and checks that the inferred
// output types agree with what the kernel produced.
#pragma once
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ir/graph.h"
#include "kiln/error.h"
#include "kiln/tensor.h"

namespace kiln {
class ThreadPool;
}

namespace kiln::test {

struct NodeSpec {
  std::string op;
  int opset = 17;
  std::string domain;
  std::vector<std::optional<Tensor>> inputs;  // nullopt: omitted optional input
  std::map<std::string, Attribute> attrs;
  int num_outputs = 1;
  // Feed inputs as initializers (known at load time) instead of graph inputs;
  // exercises inference that reads constant inputs (Reshape's shape, ...).
  bool constant_inputs = false;
  // Inputs from this index on are initializers (-1: as constant_inputs says);
  // e.g. 1 for a Conv with constant weights and a run-time X.
  int constant_from = -1;
  ThreadPool* pool = nullptr;  // the intra-op pool kernels get (null: none)
};

// Throws kiln::Error (or UnsupportedError) like a Session would.
std::vector<Tensor> run_node(const NodeSpec& spec);

Attribute attr_int(int64_t v);
Attribute attr_float(float v);
Attribute attr_string(std::string v);
Attribute attr_ints(std::vector<int64_t> v);
Attribute attr_floats(std::vector<float> v);
Attribute attr_tensor(Tensor t);

// Tensors from values.
Tensor make_f32(Shape shape, std::vector<float> v);
Tensor make_i64(Shape shape, std::vector<int64_t> v);
Tensor make_bool(Shape shape, std::vector<bool> v);
Tensor random_f32(Shape shape, std::mt19937& rng, float lo = -1, float hi = 1);
// Element-wise closeness for float tensors (same shape and dtype required).
::testing::AssertionResult all_close(const Tensor& got, const Tensor& want, double rtol = 1e-5, double atol = 1e-6);
std::vector<float> to_f32(const Tensor& t);  // any float/int dtype
// Tensor copies in another dtype, for running a node in float64 (the
// reference path) and comparing with its float32 fast path.
Tensor to_f64(const Tensor& t);         // from float32
Tensor to_f32_tensor(const Tensor& t);  // from any float/int dtype

// Index helpers for references written as loops over multi-indices.
int64_t offset_of(const Shape& s, const std::vector<int64_t>& idx);  // row-major
std::vector<std::vector<int64_t>> all_indices(const Shape& s);       // row-major order
float at(const Tensor& t, const std::vector<int64_t>& idx);          // float32 element

}  // namespace kiln::test
