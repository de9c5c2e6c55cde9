// plan_arena (planner/arena_plan.h) on synthetic lifetimes.
#include <gtest/gtest.h>

#include <random>

#include "planner/arena_plan.h"

namespace kiln {

namespace {
size_t aligned(size_t n) { return (n + 63) / 64 * 64; }

// No two buffers with intersecting lifetimes share a byte; all fit the arena.
void expect_valid(const std::vector<BufferLifetime>& b, const ArenaPlan& p) {
  ASSERT_EQ(p.offsets.size(), b.size());
  for (size_t i = 0; i < b.size(); ++i) {
    EXPECT_EQ(p.offsets[i] % 64, 0u);
    EXPECT_LE(p.offsets[i] + b[i].bytes, p.arena_bytes);
    for (size_t j = i + 1; j < b.size(); ++j) {
      bool live_together = b[i].first <= b[j].last && b[j].first <= b[i].last;
      bool share = p.offsets[i] < p.offsets[j] + b[j].bytes && p.offsets[j] < p.offsets[i] + b[i].bytes;
      EXPECT_FALSE(live_together && share) << "buffers " << i << " and " << j;
    }
  }
}
}  // namespace

TEST(ArenaPlan, ChainReusesTwoBlocks) {
  // y_i = f(y_{i-1}): each buffer is live from its producer to its reader.
  std::vector<BufferLifetime> b;
  for (int i = 0; i < 10; ++i) b.push_back({i, i + 1, 1000});
  ArenaPlan p = plan_arena(b);
  expect_valid(b, p);
  EXPECT_EQ(p.total_bytes, 10 * aligned(1000));
  EXPECT_EQ(p.arena_bytes, 2 * aligned(1000));
}

TEST(ArenaPlan, SmallBufferFillsGapLeftByLargeOnes) {
  // Two big buffers that never meet share offset 0; the small one that lives
  // beside both goes above, not into a new region per buffer.
  std::vector<BufferLifetime> b = {{0, 1, 4096}, {2, 3, 4096}, {0, 3, 64}, {1, 2, 128}};
  ArenaPlan p = plan_arena(b);
  expect_valid(b, p);
  EXPECT_EQ(p.offsets[0], p.offsets[1]);
  EXPECT_EQ(p.arena_bytes, 4096u + 64 + 128);
}

TEST(ArenaPlan, EmptyAndZeroSized) {
  EXPECT_EQ(plan_arena({}).arena_bytes, 0u);
  std::vector<BufferLifetime> b = {{0, 0, 0}};
  ArenaPlan p = plan_arena(b);
  EXPECT_EQ(p.arena_bytes, 64u);  // a zero-byte buffer still gets a distinct address
}

TEST(ArenaPlan, RandomLifetimesNeverOverlap) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<BufferLifetime> b;
    int n = 1 + static_cast<int>(rng() % 60);
    for (int i = 0; i < n; ++i) {
      int64_t first = rng() % 40;
      b.push_back({first, first + static_cast<int64_t>(rng() % 10), 1 + rng() % 100000});
    }
    ArenaPlan p = plan_arena(b);
    expect_valid(b, p);
    EXPECT_LE(p.arena_bytes, p.total_bytes);
    // Lower bound: the bytes live at the busiest step.
    size_t peak = 0;
    for (int64_t t = 0; t < 50; ++t) {
      size_t live = 0;
      for (const auto& x : b)
        if (x.first <= t && t <= x.last) live += aligned(x.bytes);
      peak = std::max(peak, live);
    }
    EXPECT_GE(p.arena_bytes, peak);
  }
}

}  // namespace kiln
