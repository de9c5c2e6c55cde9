// Counts heap allocations during steady-state Session::run calls: with the
// memory planner, runs after the first two (the recording run and the run
// that creates the arena) allocate no tensor data. This binary replaces
// malloc and friends (forwarding to glibc's own), so it is kept apart from
// kiln_tests.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "kiln/session.h"
#include "model_builder.h"

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}

namespace {
constexpr size_t kLarge = 4096;
std::atomic<bool> counting{false};
std::atomic<long> small_count{0}, large_count{0};
std::atomic<size_t> largest{0};

void note(size_t n) {
  if (!counting.load(std::memory_order_relaxed)) return;
  (n >= kLarge ? large_count : small_count).fetch_add(1, std::memory_order_relaxed);
  size_t seen = largest.load(std::memory_order_relaxed);
  while (n > seen && !largest.compare_exchange_weak(seen, n)) {
  }
}
}  // namespace

extern "C" {
void* malloc(size_t n) {
  note(n);
  return __libc_malloc(n);
}
void* calloc(size_t a, size_t b) {
  note(a * b);
  return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
  note(n);
  return __libc_realloc(p, n);
}
void free(void* p) { __libc_free(p); }
void* aligned_alloc(size_t alignment, size_t n) {
  note(n);
  return __libc_memalign(alignment, n);
}
void* memalign(size_t alignment, size_t n) {
  note(n);
  return __libc_memalign(alignment, n);
}
int posix_memalign(void** out, size_t alignment, size_t n) {
  note(n);
  void* p = __libc_memalign(alignment, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
}

namespace kiln::test {

namespace {
struct Counts {
  long small = 0, large = 0;
  size_t largest = 0;
};

// Allocations per run over `runs` runs, after two warm-up runs.
Counts steady_state(const Session& s, const std::vector<std::pair<std::string, Tensor>>& feed, int runs = 5) {
  s.run(feed);
  s.run(feed);
  small_count = 0;
  large_count = 0;
  largest = 0;
  counting = true;
  for (int i = 0; i < runs; ++i) s.run(feed);
  counting = false;
  return {small_count / runs, large_count / runs, largest.load()};
}

Tensor ramp(Shape shape) {
  Tensor t(DType::kFloat32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i % 17) * 0.05f - 0.3f;
  return t;
}

void report(const char* what, const Counts& c) {
  std::printf("%s: per run %ld small allocations, %ld of >= %zu bytes (largest %zu bytes)\n", what, c.small, c.large,
              kLarge, c.largest);
}
}  // namespace

TEST(SteadyStateAllocations, ConvChainAllocatesNoTensorData) {
  for (int threads : {1, 2}) {
    std::string b = bytes_of(conv_chain_model(8, 16, 32));
    SessionOptions o;
    o.threads = threads;
    Session s = Session::load_bytes(b.data(), b.size(), o);
    Counts c = steady_state(s, {{"x", ramp({2, 16, 32, 32})}});
    report(threads == 1 ? "conv chain, 1 thread" : "conv chain, 2 threads", c);
    EXPECT_EQ(c.large, 0) << "largest allocation " << c.largest << " bytes";
    EXPECT_GT(s.arena_bytes(), 0u);
  }
}

TEST(SteadyStateAllocations, DigitsModelAllocatesNoTensorData) {
  SessionOptions o;
  o.threads = 1;
  Session s = Session::load(std::string(KILN_SOURCE_DIR) + "/models/digits/model.onnx", o);
  Shape shape;
  for (const TensorDim& d : s.inputs()[0].shape) shape.push_back(d.size >= 0 ? d.size : 2);
  Counts c = steady_state(s, {{s.inputs()[0].name, ramp(shape)}});
  report("digits", c);
  EXPECT_EQ(c.large, 0) << "largest allocation " << c.largest << " bytes";
}

TEST(SteadyStateAllocations, WithoutThePlannerTensorsAreAllocated) {
  // The counter itself works: heap-allocated runs do allocate tensor data.
  std::string b = bytes_of(conv_chain_model(8, 16, 32));
  SessionOptions o;
  o.threads = 1;
  o.memory_planner = false;
  Session s = Session::load_bytes(b.data(), b.size(), o);
  Counts c = steady_state(s, {{"x", ramp({2, 16, 32, 32})}});
  report("conv chain, planner off", c);
  EXPECT_GE(c.large, 9);  // the nine conv outputs (Relu fused in)
}

}  // namespace kiln::test
