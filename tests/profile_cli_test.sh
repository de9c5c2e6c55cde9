#!/usr/bin/env bash
# `kiln profile`: JSON with one row per executed node whose times add up to
# no more than the run, CSV that a CSV parser reads, and a Chrome trace with
# one event per node per run.
set -eu
kiln="$1"
model="$2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$kiln" profile "$model" --shapes 1x1x8x8 -n 4 --warmup 1 --format json --trace "$tmp/trace.json" --peak-gflops 100 > "$tmp/p.json"
"$kiln" profile "$model" --shapes 1x1x8x8 -n 20 --warmup 2 --format json --threads 1 --peak-gflops 100 > "$tmp/p1.json"
"$kiln" profile "$model" --shapes 1x1x8x8 -n 2 --warmup 0 --format json --opt-level 0 --peak-gflops 100 > "$tmp/p0.json"
"$kiln" profile "$model" --shapes 1x1x8x8 -n 2 --warmup 0 --format csv > "$tmp/p.csv"
"$kiln" profile "$model" --shapes 1x1x8x8 -n 2 --warmup 0 --top 3 > "$tmp/p.txt"
if "$kiln" profile "$model" --format yaml 2> "$tmp/err.txt"; then echo "bad --format accepted"; exit 1; fi
grep -q "format" "$tmp/err.txt"
python3 - "$tmp" <<'PY'
import csv, json, sys
d = sys.argv[1]
j = json.load(open(f"{d}/p.json"))
nodes = j["nodes"]
assert nodes and all({"name", "op", "median_ms", "share"} <= set(n) for n in nodes), nodes[:2]
assert sum(n["median_ms"] for n in nodes) <= j["run_ms"]["median"] * 1.5 + 0.05, j["run_ms"]
assert abs(sum(n["share"] for n in nodes) - 1) < 1e-6
assert sum(o["nodes"] for o in j["ops"]) == len(nodes)
# Node means account for the run (the executor's own time is the rest).
j1 = json.load(open(f"{d}/p1.json"))
ratio = j1["node_mean_ms_sum"] / j1["run_ms"]["mean"]
assert 0.9 <= ratio <= 1.0 + 1e-9, ratio
# FLOPs: symbolic batch bound from the fed input, so every conv and the Gemm
# is counted; GFLOP/s and the fraction of the given peak follow from them.
counted = [n for n in j1["nodes"] if n["flops"]]
assert any("Conv" in n["op"] for n in counted) and any(n["op"] == "Gemm" for n in counted), j1["nodes"]
for n in counted:
    if n["median_ms"] > 0:
        assert abs(n["gflops"] - n["flops"] / (n["median_ms"] * 1e6)) <= 1e-6 * n["gflops"], n
        assert abs(n["peak_fraction"] - n["gflops"] / 100) <= 1e-9, n
assert j1["peak_gflops"] == 100 and j1["flops"] == sum(n["flops"] or 0 for n in j1["nodes"])
# Provenance: at level 2 each conv carries its Relu; at level 0 every node
# stands for itself; every imported node appears exactly once.
origins = [o for n in j1["nodes"] for o in n["origins"]]
plain = [o for n in json.load(open(f"{d}/p0.json"))["nodes"] for o in n["origins"]]
assert sorted(set(plain)) == sorted(plain) and set(plain) <= set(origins), (plain, origins)
fused = [n for n in j1["nodes"] if len(n["origins"]) > 1]
assert fused and all(any("Relu" in o for o in n["origins"]) for n in fused), fused
rows = list(csv.DictReader(open(f"{d}/p.csv")))
assert len(rows) == len(nodes) and rows[0]["op"] == nodes[0]["op"], rows[:1]
t = json.load(open(f"{d}/trace.json"))
ev = [e for e in t["traceEvents"] if e.get("cat") != "run"]
assert len(ev) == 4 * len(nodes), (len(ev), len(nodes))
assert all(e["ph"] == "X" and e["dur"] >= 0 for e in ev)
print("profile ok")
PY
