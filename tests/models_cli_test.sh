#!/usr/bin/env bash
# What kiln's commands accept and refuse as a model: an opset newer than kiln
# implements is refused naming the domain and both versions (by every command
# that loads a model); an opset kiln implements loads. Test-data folders map
# input_K.pb to inputs by the TensorProto's name, else by position among the
# inputs without an initializer.
set -eu
kiln="$1"
repo="$2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$(dirname "$0")/cli_expect.sh"

/usr/bin/python3 - "$tmp" <<'PY'
import sys
from onnx import TensorProto, helper, save
d = sys.argv[1]
def relu(opsets):
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid(dom, v) for dom, v in opsets])
save(relu([("", 999)]), f"{d}/opset999.onnx")
save(relu([("", 17), ("kiln", 50)]), f"{d}/kiln50.onnx")
save(relu([("", 17), ("com.example", 50)]), f"{d}/other_domain.onnx")
# One node kiln cannot run: a one-line error.
g = helper.make_graph([helper.make_node("FancyOp", ["x"], ["y"], name="fancy", domain="com.example")], "g",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]),
     f"{d}/one_unsupported.onnx")
# Names that are not UTF-8 (ONNX does not check): a node name's bytes patched.
m = relu([("", 17)])
m.graph.node[0].name = "QQQQ"
b = m.SerializeToString().replace(b"QQQQ", b"\xff\xfe\xc3\x28")
open(f"{d}/bad_utf8.onnx", "wb").write(b)
PY

newest=$("$kiln" ops --format json | /usr/bin/python3 -c "
import json, sys
print(max(o['since'] for o in json.load(sys.stdin) if o['domain'] == 'ai.onnx'))")
for cmd in run bench profile inspect compare graph build export-onnx; do
  out=()
  case $cmd in build|export-onnx) out=(-o "$tmp/out.$cmd");; graph) out=(-o "$tmp/out.dot");; esac
  expect_error "uses opset 999 of domain 'ai.onnx', newer than this kiln implements (up to $newest)" \
    $cmd "$tmp/opset999.onnx" "${out[@]}"
done
expect_error "opset 50 of domain 'kiln'" run "$tmp/kiln50.onnx"
out=$("$kiln" run "$tmp/one_unsupported.onnx" 2>&1) && fail "one unsupported node ran"
[ "$(wc -l <<<"$out")" = 1 ] && grep -q "^kiln: error: .*: not supported: node 'fancy'" <<<"$out" ||
  fail "one unsupported node: not one line: $out"
for fmt in json yaml csv table; do
  "$kiln" inspect "$tmp/bad_utf8.onnx" --format $fmt > "$tmp/bad_utf8.$fmt" || fail "inspect --format $fmt of non-UTF-8 names"
done
/usr/bin/python3 -c "import json, sys; json.loads(open(sys.argv[1], 'rb').read().decode('utf-8'))" "$tmp/bad_utf8.json" ||
  fail "inspect --format json of non-UTF-8 names is not UTF-8 JSON"
"$kiln" profile "$tmp/bad_utf8.onnx" -n 1 --warmup 0 --format json --peak-gflops 10 --l2-gbps 10 --dram-gbps 10 \
  > "$tmp/p.json" || fail "profile --format json of non-UTF-8 names"
# A domain kiln has no op of is not judged by its version.
"$kiln" run "$tmp/other_domain.onnx" > /dev/null || fail "other domain's opset refused"
# ONNX Model Zoo-style test folders: the weight W is an initializer listed
# first among the graph inputs; input_0.pb (named data_0, or unnamed) is the
# second input. Expected output computed by numpy.
/usr/bin/python3 - "$tmp/zoo" <<'PY'
import os, sys
import numpy as np
from onnx import TensorProto, helper, numpy_helper, save
d = sys.argv[1]
rng = np.random.default_rng(0)
w = rng.standard_normal((3, 4)).astype(np.float32)
x = rng.standard_normal((2, 3)).astype(np.float32)
g = helper.make_graph([helper.make_node("MatMul", ["data_0", "W"], ["y"])], "g",
                      [helper.make_tensor_value_info("W", TensorProto.FLOAT, [3, 4]),
                       helper.make_tensor_value_info("data_0", TensorProto.FLOAT, [2, 3])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
                      [numpy_helper.from_array(w, "W")])
for case, name in (("named", "data_0"), ("unnamed", "")):
    os.makedirs(f"{d}/{case}/test_data_set_0")
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), f"{d}/{case}/model.onnx")
    with open(f"{d}/{case}/test_data_set_0/input_0.pb", "wb") as f:
        f.write(numpy_helper.from_array(x, name).SerializeToString())
    with open(f"{d}/{case}/test_data_set_0/output_0.pb", "wb") as f:
        f.write(numpy_helper.from_array(x @ w, "y").SerializeToString())
PY
"$kiln" conformance "$tmp/zoo" > "$tmp/conf.txt" || fail "conformance with initializer inputs: $(cat "$tmp/conf.txt")"
grep -q "^2 passed, 0 failed" "$tmp/conf.txt" || fail "conformance: $(cat "$tmp/conf.txt")"
"$kiln" compare "$tmp/zoo/named/model.onnx" --ref "$tmp/zoo/named/test_data_set_0" > /dev/null || fail "compare --ref DIR"
# Engines: compare runs the ONNX model the engine was built from in the
# reference (recorded at build, or --source); export-onnx writes an engine
# with its packed weights unpacked; --optimized exports pass
# onnx.checker (fused nodes are kiln:Fused<Op>) and reload with the same outputs.
digits="$repo/models/digits/model.onnx"
sample="$repo/models/digits/samples/digits10.npy"
"$kiln" build "$digits" -o "$tmp/d.kiln" --min-shapes image:1x1x8x8 --opt-shapes image:4x1x8x8 \
  --max-shapes image:16x1x8x8 > /dev/null
"$kiln" compare "$tmp/d.kiln" --ref kiln -i image="$sample" > "$tmp/c.txt" || fail "compare ENGINE: $(cat "$tmp/c.txt")"
grep -q PASS "$tmp/c.txt" || fail "compare ENGINE: $(cat "$tmp/c.txt")"
cp "$digits" "$tmp/source.onnx"
"$kiln" build "$tmp/source.onnx" -o "$tmp/moved.kiln" --shapes image:10x1x8x8 > /dev/null
rm "$tmp/source.onnx"
expect_error "its ONNX model $tmp/source.onnx is not there" compare "$tmp/moved.kiln" --ref kiln -i image="$sample"
"$kiln" compare "$tmp/moved.kiln" --source "$digits" --ref kiln -i image="$sample" > /dev/null || fail "compare --source"
expect_error "--per-layer compares every value of an ONNX model" compare "$tmp/d.kiln" --ref kiln --per-layer
expect_error "--source is for an engine" compare "$digits" --source "$digits" --ref kiln --shapes 1x1x8x8
# An engine whose packed weights replaced the originals (MatMul/Gemm panels,
# oneDNN-reordered conv weights) is written with the weights unpacked: the
# file reloads and computes what the engine computes.
"$kiln" export-onnx "$tmp/d.kiln" -o "$tmp/e.onnx" > /dev/null || fail "export-onnx ENGINE"
/usr/bin/python3 - "$tmp/e.onnx" <<'PY' || fail "export-onnx ENGINE: packed weights not restored"
import sys
import onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m)
ext = [t.name for t in m.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
assert not ext, ext
PY
"$kiln" inspect "$tmp/d.kiln" --format json | /usr/bin/python3 -c "
import json, sys
j = json.load(sys.stdin)
assert any(n.get('packed') for n in j['nodes']), 'the engine has no packed weights: the test tests nothing'" ||
  fail "engine without packed weights"
"$kiln" run "$tmp/d.kiln" -i image="$sample" -o "$tmp/eng_out" > /dev/null
"$kiln" compare "$tmp/e.onnx" -i image="$sample" --ref "$tmp/eng_out" --rtol 1e-6 > /dev/null ||
  fail "the exported engine computes other outputs"
"$kiln" export-onnx "$digits" --optimized -o "$tmp/opt.onnx" > /dev/null
/usr/bin/python3 - "$tmp/opt.onnx" <<'PY' || fail "optimized export is not valid ONNX"
import sys
import onnx
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
assert any(n.domain == "kiln" and n.op_type.startswith("Fused") for n in m.graph.node), [n.op_type for n in m.graph.node]
assert not any(a.name.startswith("kiln.") for n in m.graph.node if n.domain != "kiln" for a in n.attribute)
PY
"$kiln" run "$digits" -i image="$sample" -o "$tmp/ref" > /dev/null
"$kiln" compare "$tmp/opt.onnx" -i image="$sample" --ref "$tmp/ref" --rtol 0 --atol 0 > /dev/null ||
  fail "optimized export reloads with other outputs"
# Control flow: parameters, nodes and MACs inside If branches are counted,
# per branch (all of a model's weights can live inside an If: silero VAD).
/usr/bin/python3 - "$tmp/if.onnx" <<'PY'
import sys
import numpy as np
from onnx import TensorProto, helper, numpy_helper, save
def branch(name, k):
    w = numpy_helper.from_array(np.ones((3, k), np.float32), f"{name}_w")
    return helper.make_graph([helper.make_node("MatMul", ["x", f"{name}_w"], [f"{name}_y"])], name, [],
                             [helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, [2, k])], [w])
g = helper.make_graph(
    [helper.make_node("If", ["c"], ["y"], name="choose", then_branch=branch("then", 4), else_branch=branch("else", 5))],
    "g", [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
          helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), sys.argv[1])
PY
"$kiln" inspect "$tmp/if.onnx" --format json > "$tmp/if.json" || fail "inspect a model with If"
/usr/bin/python3 - "$tmp/if.json" <<'PY' || fail "inspect inside If: $(cat "$tmp/if.json")"
import json, sys
j = json.load(open(sys.argv[1]))
t = j["totals"]
assert t["params"] == 3 * 4 + 3 * 5 and t["params_in_bodies"] == 27 and t["nodes_in_bodies"] == 2, t
bodies = {b["attribute"]: b for b in j["nodes"][0]["bodies"]}
assert bodies["then_branch"]["params"] == 12 and bodies["else_branch"]["params"] == 15, bodies
assert bodies["then_branch"]["macs"] == 2 * 3 * 4 and bodies["else_branch"]["macs"] == 2 * 3 * 5, bodies
PY
"$kiln" inspect "$tmp/if.onnx" | grep -q "in choose (If) then_branch .* 1 nodes, 12 parameters" || fail "inspect table: If body"
# ... timed per node by profile (the taken branch's MatMul ran once per run,
# the other not at all), and drawn by graph (each branch a cluster).
"$kiln" profile "$tmp/if.onnx" -i c=true --shapes x:2x3 -n 5 --peak-gflops 1 --l2-gbps 1 --dram-gbps 1 \
  --format json > "$tmp/if_profile.json" || fail "profile a model with If"
/usr/bin/python3 - "$tmp/if_profile.json" <<'PY' || fail "profile inside If: $(cat "$tmp/if_profile.json")"
import json, sys
b = {n["path"]: n for n in json.load(open(sys.argv[1]))["body_nodes"]}
assert set(b) == {"choose/then_branch/MatMul_0", "choose/else_branch/MatMul_0"}, b
assert b["choose/then_branch/MatMul_0"]["calls"] == 1 and b["choose/else_branch/MatMul_0"]["calls"] == 0, b
assert b["choose/then_branch/MatMul_0"]["median_ms"] > 0 and b["choose/else_branch/MatMul_0"]["median_ms"] == 0, b
PY
"$kiln" profile "$tmp/if.onnx" -i c=false --shapes x:2x3 -n 2 --peak-gflops 1 --l2-gbps 1 --dram-gbps 1 |
  grep -q "choose/else_branch/MatMul_0 *MatMul .* 1$" || fail "profile table: If body"
"$kiln" graph "$tmp/if.onnx" -o "$tmp/if.svg" 2> "$tmp/if_graph.txt" || fail "graph a model with If"
grep -q "1 nodes, 2 more in 2 control-flow bodies" "$tmp/if_graph.txt" || fail "graph: bodies: $(cat "$tmp/if_graph.txt")"
[ "$(grep -c 'class="node op&#45;matmul body"' "$tmp/if.svg")" = 2 ] || fail "graph: the branches' MatMuls"
# A build whose recording run needs a real value (silero VAD's sample rate
# picks its If branch; the other branch fails on sr = 0): the error says so,
# and kiln build --input gives the value.
/usr/bin/python3 - "$tmp/sr.onnx" <<'PY'
import sys
import numpy as np
from onnx import TensorProto, helper, numpy_helper, save
then_g = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then", [],
                           [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
bad = numpy_helper.from_array(np.array([5], np.int64), "five")
else_g = helper.make_graph([helper.make_node("Reshape", ["x", "five"], ["e"])], "else", [],
                           [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)], [bad])
rate = numpy_helper.from_array(np.array(16000, np.int64), "rate")
g = helper.make_graph(
    [helper.make_node("Equal", ["sr", "rate"], ["is16k"]),
     helper.make_node("If", ["is16k"], ["y"], name="by_rate", then_branch=then_g, else_branch=else_g)],
    "g", [helper.make_tensor_value_info("sr", TensorProto.INT64, []),
          helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [rate])
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), sys.argv[1])
PY
expect_error "on filler values for sr, x" build "$tmp/sr.onnx" -o "$tmp/sr.kiln" --shapes x:4
expect_error "give it with --input NAME=VALUE" build "$tmp/sr.onnx" -o "$tmp/sr.kiln" --shapes x:4
expect_error "the recording run needs int64 scalar" build "$tmp/sr.onnx" -o "$tmp/sr.kiln" --shapes x:4 -i "sr=[16000]"
"$kiln" build "$tmp/sr.onnx" -o "$tmp/sr.kiln" --shapes x:4 --input sr=16000 > /dev/null || fail "build --input sr=16000"
"$kiln" run "$tmp/sr.kiln" -i sr=16000 -i "x=[1,2,3,4]" | grep -q "output y: float 4 " || fail "engine built with --input"
echo "models cli ok"
