#!/usr/bin/env bash
# `kiln bench --json` prints exactly one JSON object with the documented keys;
# so does `kiln bench --shapes-sweep`, with one `sweep` entry per shape in order.
set -eu
kiln="$1"
model="$2"
out=$("$kiln" bench "$model" --shapes 1x1x8x8 --iterations 5 --warmup 1 --json)
python3 - "$out" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
want = ["session_create_ms", "first_run_ms", "first_result_ms", "latency_ms", "throughput_per_s", "peak_rss_bytes", "arena_bytes", "threads", "iterations"]
missing = [k for k in want if k not in j]
missing += ["latency_ms." + k for k in ["min", "median", "mean", "p90", "p99"] if k not in j.get("latency_ms", {})]
assert not missing, f"missing keys: {missing}"
assert j["iterations"] == 5, j["iterations"]
lat = j["latency_ms"]
assert 0 < lat["min"] <= lat["median"] <= lat["p99"], lat
assert j["peak_rss_bytes"] > 0 and j["throughput_per_s"] > 0, j
# The first result comes after the session was made and the first run done.
assert 0 < j["first_run_ms"] and j["session_create_ms"] + j["first_run_ms"] <= j["first_result_ms"], j
print("bench json ok")
PY

# The model's first input is image: float[batch x 1 x 8 x 8].
sweep_check='
import json, sys
j = json.loads(sys.argv[1])
want = [dict(x) for x in json.loads(sys.argv[2])]
for k in ["model", "session_create_ms", "threads", "warmup", "iterations", "peak_rss_per_shape", "sweep"]:
    assert k in j, f"missing key {k}"
got = [e["shape"] for e in j["sweep"]]
assert got == want, (got, want)
for e in j["sweep"]:
    lat = e["latency_ms"]
    assert 0 < lat["min"] <= lat["median"] <= lat["p90"], e
    assert lat["min"] <= lat["mean"], e
    assert e["iterations"] == 3 and e["throughput_per_s"] > 0, e
    batch = next(iter(e["shape"].values()))[0]
    assert e["batch"] == batch, e
    assert abs(e["samples_per_s"] - e["throughput_per_s"] * batch) <= 1e-6 * e["samples_per_s"], e
    assert e["peak_rss_mib"] > 0 and e["rss_mib"] > 0 and e["arena_mib"] >= 0, e
    if j["peak_rss_per_shape"]:
        assert e["peak_rss_mib"] >= e["rss_mib"], e
'
out=$("$kiln" bench "$model" --shapes-sweep image:1x1x8x8..3x1x8x8,8x1x8x8 -n 3 --warmup 1 --threads 1 --json)
python3 -c "$sweep_check" "$out" \
  '[{"image": [1,1,8,8]}, {"image": [2,1,8,8]}, {"image": [3,1,8,8]}, {"image": [8,1,8,8]}]'
# The table: one row per shape, in order.
rows=$("$kiln" bench "$model" --shapes-sweep image:2x1x8x8,1x1x8x8 -n 2 --warmup 0 | grep '^image:' | cut -d' ' -f1)
[ "$rows" = $'image:2x1x8x8\nimage:1x1x8x8' ] || { echo "table rows: $rows"; exit 1; }

# Two inputs with a shared symbolic batch, swept in lockstep (needs onnx in /usr/bin/python3).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if /usr/bin/python3 - "$tmp/add.onnx" <<'PY'
import sys
from onnx import TensorProto, helper, save
x = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n", 8]) for n in ("a", "b")]
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 8])
g = helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"])], "add", x, [y])
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), sys.argv[1])
PY
then
  out=$("$kiln" bench "$tmp/add.onnx" --shapes-sweep 'a:1x8..3x8;b:1x8,2x8,3x8' -n 3 --warmup 1 --json)
  python3 -c "$sweep_check" "$out" \
    '[{"a": [1,8], "b": [1,8]}, {"a": [2,8], "b": [2,8]}, {"a": [3,8], "b": [3,8]}]'
  # --shapes fixes the inputs that are not swept (Add broadcasts b: 1x8).
  out=$("$kiln" bench "$tmp/add.onnx" --shapes-sweep 'a:1x8..3x8' --shapes b:1x8 -n 3 --warmup 1 --json)
  python3 -c "$sweep_check" "$out" '[{"a": [1,8]}, {"a": [2,8]}, {"a": [3,8]}]'
else
  echo "skipped the two-input sweep: /usr/bin/python3 has no onnx"
fi
echo "bench sweep json ok"
