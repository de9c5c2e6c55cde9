#!/usr/bin/env bash
# `kiln inspect`: JSON with the documented keys (docs/flops.md), CSV that
# Python's csv module reads (one header row, one row per node), YAML that
# PyYAML reads back equal to the JSON; a model with unsupported nodes is
# listed with one reason per node and exit code 0; bad input exits 1.
set -eu
kiln="$1"
src="$2"
digits="$src/models/digits/model.onnx"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$kiln" inspect "$digits" --shapes image:1x1x8x8 --format json > "$tmp/d.json"
"$kiln" inspect "$digits" --shapes 1x1x8x8 --format csv > "$tmp/d.csv"
"$kiln" inspect "$digits" --shapes 1x1x8x8 --format yaml > "$tmp/d.yaml"
"$kiln" inspect "$digits" --shapes image:4x1x8x8 --format json > "$tmp/d4.json"
"$kiln" inspect "$digits" --shapes 1x1x8x8 --optimized --format json > "$tmp/opt.json"
"$kiln" inspect "$digits" --shapes 1x1x8x8 > "$tmp/d.txt"
grep -q "^op histogram" "$tmp/d.txt"
grep -q "^total " "$tmp/d.txt"
"$kiln" inspect "$src/tests/bad_models/unsupported_reasons.onnx" --format json > "$tmp/u.json"
"$kiln" inspect "$src/tests/bad_models/unsupported_reasons.onnx" > "$tmp/u.txt"
grep -q "not supported: 4 node(s)" "$tmp/u.txt"
python3 - "$tmp" <<'PY'
import csv, json, sys
import yaml
d = sys.argv[1]
j = json.load(open(f"{d}/d.json"))
for key in ("inputs", "outputs", "opsets", "op_histogram", "unsupported", "nodes", "totals", "parameters",
            "initializers", "ir_version", "producer"):
    assert key in j, key
assert j["inputs"][0]["name"] == "image" and j["inputs"][0]["shape"] == ["batch", 1, 8, 8], j["inputs"]
assert j["inputs"][0]["analysis_shape"] == [1, 1, 8, 8], j["inputs"]
assert j["unsupported"] == []
nodes = j["nodes"]
assert all({"name", "op", "macs", "flops", "params"} <= set(n) for n in nodes), nodes[:1]
assert sum(j["op_histogram"].values()) == len(nodes) == j["totals"]["nodes"]
t = j["totals"]
assert t["uncounted_nodes"] == 0 and t["macs"] > 0
assert t["macs"] == sum(n["macs"] for n in nodes) and t["flops"] == sum(n["flops"] for n in nodes)
assert t["params"] == j["parameters"]["count"], (t, j["parameters"])
for n in nodes:
    if n["op"] in ("Conv", "Gemm"):
        assert n["flops"] == 2 * n["macs"], n
# Batch 4 costs 4 times batch 1.
j4 = json.load(open(f"{d}/d4.json"))
assert j4["totals"]["macs"] == 4 * t["macs"], j4["totals"]
# After the optimizer: fewer nodes (Relu fused into Conv), the same MACs.
o = json.load(open(f"{d}/opt.json"))
assert o["graph"] == "optimized" and o["totals"]["macs"] == t["macs"], o["totals"]
assert len(o["nodes"]) < len(nodes) and any("epilogue" in n for n in o["nodes"]), [n["op"] for n in o["nodes"]]
rows = list(csv.DictReader(open(f"{d}/d.csv")))
assert list(rows[0]) == ["index", "name", "op", "input_shapes", "output_shapes", "params", "macs", "flops"], rows[0]
assert len(rows) == len(nodes) and [r["op"] for r in rows] == [n["op"] for n in nodes]
assert [int(r["macs"]) for r in rows] == [n["macs"] for n in nodes]
y = yaml.safe_load(open(f"{d}/d.yaml"))
assert y == j, "YAML differs from JSON"
u = json.load(open(f"{d}/u.json"))
kinds = {x["name"]: (x["domain"], x["op"], x["reason_kind"]) for x in u["unsupported"]}
assert kinds == {
    "fancy": ("com.example", "FancyOp", "op unknown"),
    "gelu": ("ai.onnx", "Gelu", "opset out of range"),
    "sigmoid_int": ("ai.onnx", "Sigmoid", "type unsupported"),
    "celu": ("ai.onnx", "Celu", "attribute value unsupported"),
}, kinds
assert all(x["reason"] and x["opset"] for x in u["unsupported"])
assert [x["input_types"] for x in u["unsupported"] if x["name"] == "sigmoid_int"] == [["int32"]]
print("inspect ok")
PY
# Bad input: exit code 1 and a "kiln: error:" line naming the file or input.
fail=0
expect_error() {  # expect_error PHRASE ARGS...
  local phrase="$1" out rc
  shift
  out=$("$kiln" inspect "$@" 2>&1) && rc=0 || rc=$?
  if [ "$rc" != 1 ] || ! grep -q "^kiln: error: " <<<"$out" || ! grep -qF -- "$phrase" <<<"$out"; then
    echo "FAIL inspect $*: exit $rc, expected 1 with '$phrase': $out"
    fail=1
  fi
}
expect_error /nonexistent.onnx /nonexistent.onnx
expect_error empty.onnx "$src/tests/bad_models/empty.onnx"
expect_error "image:1xAx8x8" "$digits" --shapes image:1xAx8x8
expect_error "'nope'" "$digits" --shapes nope:1x1x8x8
expect_error "input 'image'" "$digits" --shapes image:1x8x8
expect_error "input 'image'" "$digits" --shapes image:1x3x8x8
expect_error "--format" "$digits" --format xml
# Dynamic dims are never guessed: the error lists the input and an example.
expect_error "image: float[batch x 1 x 8 x 8]" "$digits"
expect_error "for example: --shapes image:1x1x8x8" "$digits"
expect_error "more than one shape without an input name" "$digits" --shapes 1x1x8x8,2x1x8x8
exit $fail
