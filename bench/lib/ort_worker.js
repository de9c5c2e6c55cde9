// Times one model in ONNX Runtime (onnxruntime-node), the way `kiln bench`
// times it in kiln, and prints one JSON object. Run by bench/vs_ort, one
// process per measurement so that peak memory is this model's alone.
//
//   node ort_worker.js '{"ort": DIR, "model": F, "inputs": [{"name": N, "file": F}], "threads": 1,
//                        "warmup": 5, "iterations": 50, "outputDir": null, "outputsByIndex": false}'
'use strict';
const path = require('path');
const fs = require('fs');
const { readTensorFile, writeNpy, safeName } = require('./tensor_files');

function percentile(sorted, p) {
  const pos = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
}

async function main() {
  const cfg = JSON.parse(process.argv[2]);
  const baselineRss = process.memoryUsage().rss;  // node itself, before ORT is loaded
  const loadStart = performance.now();  // time to first result counts from here (as kiln's from its own start)
  const ort = require(path.join(cfg.ort, 'node_modules', 'onnxruntime-node'));
  const feeds = {};
  for (const { name, file } of cfg.inputs) {
    const t = readTensorFile(file, name);
    feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
  }
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(cfg.model, {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: cfg.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
  const createMs = performance.now() - t0;
  const f0 = performance.now();
  let outs = await session.run(feeds);
  const firstRunMs = performance.now() - f0;
  const firstResultMs = performance.now() - loadStart;
  for (let i = 0; i < cfg.warmup; ++i) outs = await session.run(feeds);
  const lat = [];
  const cpu = [];
  const start = performance.now();
  for (let i = 0; i < cfg.iterations; ++i) {
    const r0 = performance.now();
    const c0 = process.cpuUsage();
    outs = await session.run(feeds);
    lat.push(performance.now() - r0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const totalMs = performance.now() - start;
  if (cfg.outputDir) {
    fs.mkdirSync(cfg.outputDir, { recursive: true });
    session.outputNames.forEach((name, k) => {
      const o = outs[name];
      // outputsByIndex (kiln compare): output_K.npy, K in the model's output
      // order, so that no two names can map to one file.
      const file = cfg.outputsByIndex ? `output_${k}.npy` : safeName(name) + '.npy';
      writeNpy(path.join(cfg.outputDir, file), { type: o.type, dims: o.dims, data: o.data });
    });
  }
  const sorted = [...lat].sort((a, b) => a - b);
  const result = {
    engine: 'onnxruntime-node',
    version: require(path.join(cfg.ort, 'node_modules', 'onnxruntime-node', 'package.json')).version,
    session_create_ms: createMs,
    first_run_ms: firstRunMs,
    first_result_ms: firstResultMs,
    latency_ms: {
      min: sorted[0],
      median: percentile(sorted, 50),
      mean: lat.reduce((a, b) => a + b, 0) / lat.length,
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
    },
    cpu_ms: { median: percentile([...cpu].sort((a, b) => a - b), 50), mean: cpu.reduce((a, b) => a + b, 0) / cpu.length },
    throughput_per_s: lat.length / (totalMs / 1000),
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
    baseline_rss_bytes: baselineRss,
    threads: cfg.threads,
    iterations: lat.length,
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((e) => {
  process.stderr.write(`ort_worker: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
