// ops/conv_select.h: the ranking every consumer of the conv choice uses.
#include <gtest/gtest.h>

#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/dnnl_glue.h"
#include "ops/conv_select.h"

namespace kiln::test {
namespace {

ConvProblem conv3x3(int64_t c, int64_t hw, bool blocked) {
  ConvProblem p;
  p.n = 1, p.c = c, p.m = c, p.h = p.w = hw, p.kh = p.kw = 3;
  p.pads_begin = p.pads_end = {1, 1};
  p.out_h = p.out_w = hw;
  p.blocked = blocked;
  p.block = dnnl_glue::channel_block();
  return p;
}

TEST(ConvSelect, BlockedThreeByThreeRanksWinogradWhereItRunsAndWins) {
  const ConvProblem p = conv3x3(64, 28, true);
  const std::vector<ConvAlgo> r = rank_conv_algorithms(p, WinogradMode::kAuto);
  if (WinogradF32Conv::available()) {
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0], ConvAlgo::kWinograd);  // winograd_f32_wins: 49 tiles, 64 channels
    EXPECT_EQ(r[1], ConvAlgo::kOneDnn);
  } else {
    EXPECT_EQ(r, std::vector<ConvAlgo>{ConvAlgo::kOneDnn});
  }
  EXPECT_EQ(rank_conv_algorithms(p, WinogradMode::kOff), std::vector<ConvAlgo>{ConvAlgo::kOneDnn});
  EXPECT_EQ(rank_conv_algorithms(p, WinogradMode::kForce)[0],
            WinogradF32Conv::available() ? ConvAlgo::kWinograd : ConvAlgo::kOneDnn);
}

TEST(ConvSelect, WinogradOnlyForWhatItComputes) {
  ConvProblem p = conv3x3(64, 28, true);
  p.strides = {2, 2};
  p.out_h = p.out_w = 14;
  EXPECT_EQ(rank_conv_algorithms(p, WinogradMode::kForce), std::vector<ConvAlgo>{ConvAlgo::kOneDnn});
  p = conv3x3(64, 28, true);
  p.group = 2;
  EXPECT_EQ(rank_conv_algorithms(p, WinogradMode::kForce), std::vector<ConvAlgo>{ConvAlgo::kOneDnn});
  p = conv3x3(64, 28, true);
  p.plain_src = true;
  EXPECT_EQ(rank_conv_algorithms(p, WinogradMode::kForce), std::vector<ConvAlgo>{ConvAlgo::kOneDnn});
  p = conv3x3(512, 3, true);  // one tile an image: Winograd streams 4x the weights for it
  EXPECT_EQ(rank_conv_algorithms(p, WinogradMode::kAuto)[0], ConvAlgo::kOneDnn);
}

TEST(ConvSelect, PlainConvsDepthwiseTapsOrGemm) {
  ConvProblem dw = conv3x3(32, 20, false);
  dw.group = 32;
  EXPECT_EQ(rank_conv_algorithms(dw, WinogradMode::kAuto), std::vector<ConvAlgo>{ConvAlgo::kDepthwise});
  ConvProblem dilated = conv3x3(64, 14, false);  // DeepLab's ASPP: 3x3 dilated by 12 on 14x14
  dilated.dilations = {12, 12};
  dilated.pads_begin = dilated.pads_end = {12, 12};
  const std::vector<ConvAlgo> r = rank_conv_algorithms(dilated, WinogradMode::kAuto);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0], ConvAlgo::kTaps);
  EXPECT_EQ(rank_conv_algorithms(conv3x3(64, 14, false), WinogradMode::kAuto), std::vector<ConvAlgo>{ConvAlgo::kGemm});
}

TEST(ConvSelect, AlgorithmNames) {
  EXPECT_STREQ(conv_algo_name(ConvAlgo::kWinograd), "winograd");
  EXPECT_STREQ(conv_algo_name(ConvAlgo::kOneDnn), "onednn");
  EXPECT_STREQ(conv_algo_name(ConvAlgo::kTaps), "taps");
}

}  // namespace
}  // namespace kiln::test
