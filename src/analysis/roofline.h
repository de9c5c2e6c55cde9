// The roofline model of one executed node (Williams, Waterman and Patterson,
// "Roofline", CACM 2009): whether the node is bound by the machine's
// arithmetic (the fp32 FMA peak) or by its memory bandwidth, and how close
// its measured time comes to that roof. `kiln profile` prints it per node;
// docs/profiling.md explains the model and its limits.
//
// First-order model: a node moves the bytes of its inputs and outputs once
// (weights included, each distinct value counted once, nothing of its
// internal scratch or of cache reuse), and runs either at the FMA peak or at
// the bandwidth of the memory level its working set (those bytes) fits in:
// L2 when it fits the last-level cache, DRAM when it exceeds it.
#pragma once
#include <cstdint>

#include "ir/graph.h"

namespace kiln {

// What the machine offers the threads of one run, measured (kiln device) or
// given on the command line. A field <= 0 is unknown.
struct MachineRoofs {
  double peak_gflops = 0;  // fp32 FMA peak of the threads used, with the selected ISA's vector width
  double l2_gbps = 0;      // streaming bandwidth, every thread's working set in its L2
  double dram_gbps = 0;    // streaming bandwidth, working sets far larger than the last-level cache
  int64_t llc_bytes = 0;   // last-level cache size: a node whose bytes exceed it streams from DRAM
};

enum class Bound { kUnknown, kCompute, kMemory };
enum class MemoryLevel { kL2, kDram };

struct RooflinePoint {
  Bound bound = Bound::kUnknown;
  MemoryLevel level = MemoryLevel::kL2;  // the bandwidth roof for the node's working set
  double bandwidth_gbps = -1;            // that level's bandwidth
  double intensity = -1;                 // arithmetic intensity, FLOP per byte moved
  double ridge = -1;                     // peak / bandwidth: the intensity where the two roofs meet
  double achieved_gflops = -1;           // flops / time (-1: unknown)
  double achieved_gbps = -1;             // bytes / time (-1: unknown)
  // The roof that bounds the node, in its own unit: GFLOP/s when compute-
  // bound (the peak), GB/s when memory-bound (the bandwidth); the node's
  // rate in that unit; and their ratio, the fraction of the roof reached
  // (-1 when unknown; it can exceed 1: Winograd does fewer multiplications
  // than it is credited with, inputs may still sit in a nearer cache).
  double roof = -1;
  double achieved = -1;
  double fraction = -1;
};

// The roofline point of a node that does `flops` floating-point operations
// and moves `bytes` bytes in `seconds`. Unknown inputs are negative. Bound is
// known when flops >= 0, bytes > 0 and the roofs are; the rates and the
// fraction also need seconds > 0. Zero FLOPs (a copy, a layout change) is
// memory-bound.
RooflinePoint roofline_point(int64_t flops, int64_t bytes, double seconds, const MachineRoofs& roofs);

// Bytes a node moves in the first-order model: each distinct input and output
// tensor's elements x element size, weights included; -1 when a shape is not
// static or a value is not a tensor of fixed-size elements (strings,
// sequences). Implicit inputs of subgraphs are not counted.
int64_t node_bytes_moved(const Node& node);

// "compute", "memory", "unknown"; "L2", "DRAM".
const char* bound_name(Bound b);
const char* memory_level_name(MemoryLevel l);

}  // namespace kiln
