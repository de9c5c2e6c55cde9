// The FMA peak of one core: enough independent AVX2 FMA chains to hide the
// FMA latency (4 cycles x 2 ports = 8 in flight; 12 to be safe).
#include <immintrin.h>

#include <cstdint>

namespace kiln::bench {

// Runs `iterations` rounds of 12 8-wide FMAs; returns a value that depends on
// them all so the compiler keeps them. FLOPs = iterations * 12 * 8 * 2.
float fma_chains_avx2(int64_t iterations) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm256_add_ps(sum, acc[i]);
  float out[8];
  _mm256_storeu_ps(out, sum);
  return out[0];
}

}  // namespace kiln::bench
