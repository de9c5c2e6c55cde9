// The float32 GEMM (every compiled microkernel the CPU can run) against a
// plain triple loop, and the thread pool it runs on.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <random>
#include <stdexcept>
#include <thread>

#include "core/thread_pool.h"
#include "kernels/cpu/gemm_f32.h"

namespace kiln::test {

namespace {

struct GemmCase {
  int64_t M, N, K;
  bool ta, tb, pack_a, pack_b;
  float alpha, beta;
};

// Max |got - want| / (1 + |want|) of one GEMM, computed with `kernel` and in double.
double gemm_error(const GemmF32Microkernel& kernel, const GemmCase& c, ThreadPool* pool, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> A(static_cast<size_t>(c.M * c.K)), B(static_cast<size_t>(c.K * c.N));
  std::vector<float> C(static_cast<size_t>(c.M * c.N)), want(C.size());
  for (float& v : A) v = u(rng);
  for (float& v : B) v = u(rng);
  for (float& v : C) v = u(rng);
  auto a_at = [&](int64_t i, int64_t k) {
    return c.ta ? A[static_cast<size_t>(k * c.M + i)] : A[static_cast<size_t>(i * c.K + k)];
  };
  auto b_at = [&](int64_t k, int64_t j) {
    return c.tb ? B[static_cast<size_t>(j * c.K + k)] : B[static_cast<size_t>(k * c.N + j)];
  };
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = 0; j < c.N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < c.K; ++k) s += static_cast<double>(a_at(i, k)) * b_at(k, j);
      want[static_cast<size_t>(i * c.N + j)] =
          static_cast<float>(c.alpha * s + c.beta * C[static_cast<size_t>(i * c.N + j)]);
    }
  if (c.beta == 0.0f) std::fill(C.begin(), C.end(), NAN);  // must not be read
  GemmF32Operand a{A.data(), c.ta ? c.M : c.K, c.ta}, b{B.data(), c.tb ? c.K : c.N, c.tb};
  std::shared_ptr<const PackedMatrixF32> pa, pb;
  if (c.pack_a) {
    pa = PackedMatrixF32::pack(PackedMatrixF32::Side::kA, a.data, a.ld, a.trans, c.M, c.K, kernel);
    a.packed = pa.get();
  }
  if (c.pack_b) {
    pb = PackedMatrixF32::pack(PackedMatrixF32::Side::kB, b.data, b.ld, b.trans, c.K, c.N, kernel);
    b.packed = pb.get();
  }
  gemm_f32(c.M, c.N, c.K, c.alpha, a, b, c.beta, C.data(), c.N, pool, kernel);
  double worst = 0;
  for (size_t i = 0; i < C.size(); ++i) {
    const double e = std::fabs(static_cast<double>(C[i]) - want[i]) / (1 + std::fabs(want[i]));
    worst = std::isnan(e) ? INFINITY : std::max(worst, e);
  }
  return worst;
}

}  // namespace

class GemmF32Variants : public ::testing::TestWithParam<const GemmF32Microkernel*> {};

TEST_P(GemmF32Variants, MatchesTripleLoop) {
  const GemmF32Microkernel& kernel = *GetParam();
  if (static_cast<int>(kernel.isa) > static_cast<int>(cpu_isa_supported()))
    GTEST_SKIP() << kernel.name << " needs " << cpu_isa_name(kernel.isa) << ", which this CPU lacks";
  std::mt19937 rng(7);
  ThreadPool pool(3);
  const int64_t sizes[] = {1, 7, 17, 64, 129};
  int n = 0;
  for (int64_t M : sizes)
    for (int64_t N : sizes)
      for (int64_t K : sizes) {
        ++n;
        GemmCase c{M,
                   N,
                   K,
                   n % 2 == 0,
                   n % 3 == 0,
                   n % 4 == 1,
                   n % 5 < 2,
                   n % 7 == 0 ? 0.5f : 1.0f,
                   n % 3 == 0   ? 0.0f
                   : n % 3 == 1 ? 1.0f
                                : -0.75f};
        EXPECT_LT(gemm_error(kernel, c, n % 2 ? &pool : nullptr, rng), 1e-5)
            << kernel.name << " M=" << M << " N=" << N << " K=" << K << " ta=" << c.ta << " tb=" << c.tb;
      }
  // Deeper than one K block and wider than one N block, threaded.
  for (GemmCase c : {GemmCase{70, 2100, 300, false, false, true, false, 1.0f, 0.0f},
                     GemmCase{300, 33, 520, true, true, false, true, 2.0f, 1.0f}})
    // float32 rounding grows with the depth of the sums.
    EXPECT_LT(gemm_error(kernel, c, &pool, rng), 1e-7 * c.K) << kernel.name << " M=" << c.M << " N=" << c.N;
}

// The small-M path (M <= 8: A read in place, several B panels per call) and
// the row chunks above MR, with every column remainder and panel grouping.
TEST_P(GemmF32Variants, SmallMMatchesTripleLoop) {
  const GemmF32Microkernel& kernel = *GetParam();
  if (static_cast<int>(kernel.isa) > static_cast<int>(cpu_isa_supported()))
    GTEST_SKIP() << kernel.name << " needs " << cpu_isa_name(kernel.isa) << ", which this CPU lacks";
  std::mt19937 rng(11);
  ThreadPool pool(2);
  int n = 0;
  for (int64_t M = 1; M <= 9; ++M)
    for (int64_t N : {1, 15, 16, 17, 33, 100, 250})
      for (int64_t K : {1, 3, 64, 300}) {
        ++n;
        GemmCase c{M,
                   N,
                   K,
                   n % 3 == 0,
                   n % 4 == 1,
                   n % 7 == 3,
                   n % 2 == 0,
                   n % 5 == 0 ? -1.5f : 1.0f,
                   n % 3 == 1   ? 0.0f
                   : n % 3 == 2 ? 1.0f
                                : 0.25f};
        EXPECT_LT(gemm_error(kernel, c, n % 2 ? &pool : nullptr, rng), 1e-7 * (K + 10))
            << kernel.name << " M=" << M << " N=" << N << " K=" << K << " ta=" << c.ta << " tb=" << c.tb
            << " pack_a=" << c.pack_a << " pack_b=" << c.pack_b;
      }
  // The classifier and LSTM step shapes, threaded and not.
  for (GemmCase c : {GemmCase{1, 1000, 2048, false, false, false, true, 1.0f, 0.0f},
                     GemmCase{4, 1024, 256, false, true, false, true, 1.0f, 1.0f},
                     GemmCase{8, 520, 130, true, false, false, false, 0.5f, 0.0f}})
    for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool})
      EXPECT_LT(gemm_error(kernel, c, p, rng), 1e-7 * c.K) << kernel.name << " M=" << c.M << " N=" << c.N;
}

// K = 0 (C = beta * C), alpha = 0, and the general path's row and column
// remainders at sizes spanning several row blocks and K blocks.
TEST_P(GemmF32Variants, EdgesMatchTripleLoop) {
  const GemmF32Microkernel& kernel = *GetParam();
  if (static_cast<int>(kernel.isa) > static_cast<int>(cpu_isa_supported()))
    GTEST_SKIP() << kernel.name << " needs " << cpu_isa_name(kernel.isa) << ", which this CPU lacks";
  std::mt19937 rng(13);
  ThreadPool pool(2);
  for (GemmCase c : {GemmCase{5, 9, 0, false, false, false, false, 1.0f, 0.5f},
                     GemmCase{13, 20, 0, false, false, true, true, 1.0f, 0.0f},
                     GemmCase{11, 21, 7, false, false, false, false, 0.0f, 2.0f},
                     GemmCase{197, 50, 260, false, false, false, true, 1.0f, 0.0f},
                     GemmCase{491, 37, 513, true, false, true, false, 1.0f, -1.0f},
                     GemmCase{250, 130, 90, false, true, false, true, 0.75f, 1.0f},
                     GemmCase{10, 3, 1, false, false, false, false, 1.0f, 1.0f}})
    for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool})
      EXPECT_LT(gemm_error(kernel, c, p, rng), 1e-7 * (c.K + 10))
          << kernel.name << " M=" << c.M << " N=" << c.N << " K=" << c.K;
}

INSTANTIATE_TEST_SUITE_P(All, GemmF32Variants, ::testing::ValuesIn(kGemmF32Microkernels),
                         [](const auto& info) { return std::string(info.param->name); });

TEST(GemmF32, DefaultKernelRunsOnThisCpu) {
  const GemmF32Microkernel& k = gemm_f32_default_kernel();
  EXPECT_LE(static_cast<int>(k.isa), static_cast<int>(cpu_isa_selected())) << k.name;
}

TEST(GemmF32, PackedOperandForAnotherProblemIsRefused) {
  std::vector<float> a(12, 1.0f), c(9);
  auto pa = PackedMatrixF32::pack(PackedMatrixF32::Side::kA, a.data(), 4, false, 3, 4, gemm_f32_scalar_4x8);
  EXPECT_THROW(gemm_f32(3, 3, 3, 1.0f, {a.data(), 4, false, pa.get()}, {a.data(), 3}, 0.0f, c.data(), 3, nullptr,
                        gemm_f32_scalar_4x8),
               std::invalid_argument);
}

// Engines save packed panels and re-pack them for another microkernel:
// unpack gives back op(src) exactly, and adopt uses saved panels in place.
TEST(GemmF32, PackedPanelsUnpackAndAdopt) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1, 1);
  for (const GemmF32Microkernel* k : {&gemm_f32_scalar_4x8, &gemm_f32_default_kernel()})
    for (bool trans : {false, true})
      for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {7, 5}, {300, 37}, {513, 17}}) {
        const int64_t ld = trans ? rows : cols;
        std::vector<float> src(static_cast<size_t>(rows * cols));
        for (float& v : src) v = u(rng);
        for (auto side : {PackedMatrixF32::Side::kA, PackedMatrixF32::Side::kB}) {
          auto p = PackedMatrixF32::pack(side, src.data(), ld, trans, rows, cols, *k);
          std::vector<float> back(src.size());
          p->unpack(back.data());
          for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j)
              ASSERT_EQ(back[static_cast<size_t>(i * cols + j)],
                        src[static_cast<size_t>(trans ? j * ld + i : i * ld + j)])
                  << k->name << " " << rows << "x" << cols << " at " << i << "," << j;
          auto q = PackedMatrixF32::adopt(side, rows, cols, k->name, nullptr, p->data(), p->size());
          ASSERT_TRUE(q);
          EXPECT_EQ(&q->kernel(), k);
          EXPECT_EQ(q->data(), p->data());
          EXPECT_THROW(PackedMatrixF32::adopt(side, rows, cols, k->name, nullptr, p->data(), p->size() + 1),
                       std::invalid_argument);
          EXPECT_FALSE(PackedMatrixF32::adopt(side, rows, cols, "gemm_f32_nope", nullptr, p->data(), p->size()));
        }
      }
}

TEST(ThreadPool, CoversRangeOnceWithOneChunkPerThread) {
  ThreadPool pool(3);
  EXPECT_EQ(pool.num_threads(), 3);
  for (int64_t n : {1, 2, 3, 10, 1000}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    std::atomic<int> chunks{0};
    pool.parallel_for(n, [&](int64_t b, int64_t e) {
      ++chunks;
      for (int64_t i = b; i < e; ++i) ++hits[static_cast<size_t>(i)];
    });
    for (auto& h : hits) EXPECT_EQ(h.load(), 1);
    EXPECT_LE(chunks.load(), 3);
  }
  EXPECT_GE(physical_core_count(), 1);
  EXPECT_LE(physical_core_count(), affinity_core_count());  // a cgroup quota only lowers it
}

// Once a parallel region is over, its threads sleep: a session between
// requests burns (almost) no CPU. Measured as the process's CPU time over
// half a second of idling after a burst of parallel GEMMs.
TEST(ThreadPool, IdleThreadsBurnNoCpu) {
  ThreadPool pool(2);
  std::vector<float> a(256 * 256, 1.0f), b(256 * 256, 1.0f), c(256 * 256);
  for (int i = 0; i < 20; ++i)
    gemm_f32(256, 256, 256, 1.0f, {a.data(), 256}, {b.data(), 256}, 0.0f, c.data(), 256, &pool);
  auto cpu_seconds = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
  };
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // libgomp's bounded spin ends
  const double before = cpu_seconds();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_LT(cpu_seconds() - before, 0.05);
}

// A chunk whose thread has not started yet is run by a thread that has: a
// worker woken from sleep takes tens of microseconds to start, the caller
// finishes its own empty chunk in less, and then takes the worker's (with
// chunks assigned statically, the caller would wait for the worker). Every
// chunk still runs exactly once.
TEST(ThreadPool, ChunksOfWorkersNotYetStartedAreTakenByTheCaller) {
  ThreadPool pool(2);
  int caller_ran_both = 0;
  for (int trial = 0; trial < 20; ++trial) {
    std::this_thread::sleep_for(std::chrono::milliseconds(trial < 10 ? 20 : 1));  // the worker sleeps
    const std::thread::id caller = std::this_thread::get_id();
    std::atomic<int> runs[2] = {};
    std::atomic<int> by_caller{0};
    pool.parallel_chunks(2, [&](int chunk, int64_t, int64_t) {
      ++runs[chunk];
      if (std::this_thread::get_id() == caller) ++by_caller;
    });
    EXPECT_EQ(runs[0].load(), 1);
    EXPECT_EQ(runs[1].load(), 1);
    caller_ran_both += by_caller.load() == 2;
  }
  EXPECT_GT(caller_ran_both, 0);
}

TEST(ThreadPool, ConcurrentAndNestedCallsAndExceptions) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&] {
      for (int i = 0; i < 200; ++i)
        pool.parallel_for(8, [&](int64_t b, int64_t e) {
          pool.parallel_for(e - b, [&](int64_t b2, int64_t e2) { total += e2 - b2; });  // nested: inline
        });
    });
  for (auto& th : callers) th.join();
  EXPECT_EQ(total.load(), 4 * 200 * 8);
  EXPECT_THROW(pool.parallel_for(4,
                                 [](int64_t b, int64_t) {
                                   if (b > 0) throw std::runtime_error("worker chunk");
                                 }),
               std::runtime_error);
  int64_t after = 0;
  pool.parallel_for(2, [&](int64_t b, int64_t e) {
    if (b == 0) after = e;
  });  // still usable
  EXPECT_GE(after, 1);
}

}  // namespace kiln::test
