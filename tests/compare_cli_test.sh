#!/usr/bin/env bash
# `kiln compare`: a model agrees with itself unoptimized and with its own
# reference files; a fault injected into one node (the test-only hook
# KILN_TEST_PERTURB_NODE) fails the comparison with exit 2 and --per-layer
# names that node as the first divergence; bad use exits 1 with a message.
# With ONNX Runtime installed (KILN_ORT_DIR or bench/.cache) the same against
# ONNX Runtime; without it that part is skipped, saying so.
set -eu
kiln="$1"
repo="$2"
model="$repo/models/digits/model.onnx"
data="$repo/models/digits/test_data_set_0"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expect_rc() {  # expect_rc RC CMD...: runs CMD, checks its exit status
  local want="$1"; shift
  local rc=0
  "$@" > "$tmp/out.txt" 2> "$tmp/err.txt" || rc=$?
  if [ "$rc" != "$want" ]; then
    echo "expected exit $want, got $rc: $*"; cat "$tmp/out.txt" "$tmp/err.txt"; exit 1
  fi
}

# The test data set's expected outputs (PyTorch's), inputs taken from there.
expect_rc 0 "$kiln" compare "$model" --ref "$data"
grep -q PASS "$tmp/out.txt"
# Against kiln at --opt-level 0, final outputs and every layer.
expect_rc 0 "$kiln" compare "$model" --shapes 1x1x8x8 --ref kiln --format json
cp "$tmp/out.txt" "$tmp/plain.json"
expect_rc 0 "$kiln" compare "$model" --shapes 1x1x8x8 --ref kiln --per-layer --format json
cp "$tmp/out.txt" "$tmp/layers.json"

# A perturbed node: the outputs fail, and --per-layer points at it (the
# layers before it agree, so it is the first).
victim=/features/features.3/Conv
KILN_TEST_PERTURB_NODE=$victim expect_rc 2 "$kiln" compare "$model" --shapes 1x1x8x8 --ref kiln
grep -q FAIL "$tmp/out.txt"
KILN_TEST_PERTURB_NODE=$victim expect_rc 2 "$kiln" compare "$model" --shapes 1x1x8x8 --ref kiln --per-layer --format json
cp "$tmp/out.txt" "$tmp/bad.json"
KILN_TEST_PERTURB_NODE=$victim expect_rc 2 "$kiln" compare "$model" --shapes 1x1x8x8 --ref kiln --per-layer
grep -q "first divergence: node '$victim' (Conv)" "$tmp/out.txt"
# The reference files are no help to a broken kernel either.
KILN_TEST_PERTURB_NODE=/classifier/Gemm expect_rc 2 "$kiln" compare "$model" --ref "$data"

# Reference files written by kiln run, one of them then changed.
"$kiln" run "$model" --shapes 1x1x8x8 --output-dir "$tmp/ref" --seed 5 > /dev/null
expect_rc 0 "$kiln" compare "$model" --shapes 1x1x8x8 --ref "$tmp/ref" --seed 5 --atol 0 --rtol 0
/usr/bin/python3 -c "
import numpy as np, sys
p = sys.argv[1]; a = np.load(p); a.flat[3] += 0.5; np.save(p, a)" "$tmp/ref/logits.npy"
expect_rc 2 "$kiln" compare "$model" --shapes 1x1x8x8 --ref "$tmp/ref" --seed 5 --format json
cp "$tmp/out.txt" "$tmp/changed.json"

python3 - "$tmp" "$victim" <<'PY'
import json, sys
d, victim = sys.argv[1], sys.argv[2]
plain = json.load(open(f"{d}/plain.json"))
assert plain["pass"] and plain["compared"] == 1 and plain["values"][0]["value"] == "logits", plain
v = plain["values"][0]
assert {"max_abs", "max_rel", "rel_l2", "cosine", "elements", "failing"} <= set(v), v
assert v["cosine"] > 0.999999 and v["rel_l2"] < 1e-5, v
layers = json.load(open(f"{d}/layers.json"))
# Every node's output: 8 nodes, one output each.
assert layers["pass"] and layers["compared"] == 8, layers["compared"]
assert layers["first_divergence"] is None
bad = json.load(open(f"{d}/bad.json"))
fd = bad["first_divergence"]
assert not bad["pass"] and fd["node"] == victim and fd["op"] == "Conv", fd
nodes = [x["node"] for x in bad["values"]]
first_bad = next(x for x in bad["values"] if x["pass"] is False)
assert first_bad["node"] == victim, first_bad
assert all(x["pass"] for x in bad["values"][:nodes.index(victim)]), bad["values"]
changed = json.load(open(f"{d}/changed.json"))
assert not changed["pass"] and changed["values"][0]["failing"] == 1, changed
print("compare ok")
PY

# Bad use: exit 1 and a message naming the problem.
expect_rc 1 "$kiln" compare "$tmp/missing.onnx" --ref kiln
grep -q "missing.onnx" "$tmp/err.txt"
expect_rc 1 "$kiln" compare "$model" --shapes 1x1x8x8 --ref "$tmp/no-such-dir"
grep -q "no-such-dir" "$tmp/err.txt"
expect_rc 1 "$kiln" compare "$model" --ref "$data" --per-layer
grep -q "per-layer" "$tmp/err.txt"
expect_rc 1 "$kiln" compare "$model" --shapes 1x1x8x8 --ref kiln --format yaml
expect_rc 1 "$kiln" compare "$model" --shapes 1x1x8x8 --ref ort --ort-dir "$tmp/no-ort"
grep -q "not installed" "$tmp/err.txt"
expect_rc 0 "$kiln" compare --help

# Against ONNX Runtime, when it is installed.
ort_dir="${KILN_ORT_DIR:-$repo/bench/.cache}"
if [ -f "$ort_dir/node_modules/onnxruntime-node/package.json" ] && command -v node > /dev/null; then
  expect_rc 0 "$kiln" compare "$model" --shapes 1x1x8x8 --ref ort --per-layer --ort-dir "$ort_dir"
  grep -q "no divergence" "$tmp/out.txt"
  KILN_TEST_PERTURB_NODE=$victim expect_rc 2 "$kiln" compare "$model" --shapes 1x1x8x8 --ref ort --per-layer --ort-dir "$ort_dir"
  grep -q "first divergence: node '$victim'" "$tmp/out.txt"
  echo "compare vs ONNX Runtime ok"
else
  echo "ONNX Runtime not installed in $ort_dir: the --ref ort part is skipped"
fi
