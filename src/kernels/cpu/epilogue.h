// The arithmetic of an element-wise epilogue (ir/epilogue.h is how a node
// carries one): a chain of steps applied to a buffer as a kernel produces
// it, so that Conv -> Relu runs as one pass over memory.
//
// A step is an EpilogueFn (its name, cost and functions) with two
// parameters. The built-in steps are below; an activation op can bring its
// own (declared in its op file and named by its facts, ir/op_facts.h), and
// register_epilogue_fn makes it known by name so that a node's attribute
// (or an engine) can name it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/tensor.h"

namespace kiln {

struct EpilogueFn {
  const char* name;  // as stored in a node's "kiln.epilogue" attribute
  int flops;         // arithmetic steps per element (docs/flops.md)
  // In place over p[0, n) in float: within a few ulp of f64's result
  // rounded to float, bit-exact for piecewise-linear steps.
  void (*f32)(float* p, int64_t n, float alpha, float beta);
  // One element in double: what the unfused op computes.
  double (*f64)(double x, float alpha, float beta);
};

struct EpilogueStep {
  const EpilogueFn* fn = nullptr;
  float alpha = 0, beta = 0;  // Clip: min, max; LeakyRelu: alpha; HardSigmoid: alpha, beta
};

// The built-in steps.
extern const EpilogueFn kEpilogueRelu, kEpilogueClip, kEpilogueLeakyRelu, kEpilogueSigmoid, kEpilogueHardSigmoid,
    kEpilogueHardSwish, kEpilogueSilu, kEpilogueGelu, kEpilogueGeluTanh, kEpilogueTanh;

// The step named `name`: a built-in one or one registered; nullptr if none.
const EpilogueFn* find_epilogue_fn(const std::string& name);
// Makes `fn` (static storage) known by its name; true (for static
// registration). Registering another fn under a taken name throws.
bool register_epilogue_fn(const EpilogueFn* fn);

class ThreadPool;

// Applies the steps to every element, one step at a time, rounding to the
// tensor's type after each like the unfused activation ops do. float64 runs
// each step's f64 (the unfused ops' bits); float32 its f32. float32 and
// float64 only; large tensors run on `pool`.
void apply_epilogue(const std::vector<EpilogueStep>& steps, Tensor& t, ThreadPool* pool = nullptr);
double apply_epilogue(const std::vector<EpilogueStep>& steps, double x);
// The float32 steps on p[0, n), on the calling thread (for kernels that fuse
// the epilogue into their own loops).
void apply_epilogue(const std::vector<EpilogueStep>& steps, float* p, int64_t n);
// y = steps(x) over n float32 elements, in L1-sized blocks (each copied then
// stepped in place while in cache), large ones on `pool`; x == y is in place.
void map_epilogue(const std::vector<EpilogueStep>& steps, const float* x, float* y, int64_t n,
                  ThreadPool* pool = nullptr);

}  // namespace kiln
