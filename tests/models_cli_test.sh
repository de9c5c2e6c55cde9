#!/usr/bin/env bash
# What kiln's commands accept and refuse as a model: an opset newer than kiln
# implements is refused naming the domain and both versions (by every command
# that loads a model); an opset kiln implements loads.
set -eu
kiln="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

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
PY

expect_error() {  # expect_error PHRASE ARGS...
  local phrase="$1" out rc
  shift
  out=$("$kiln" "$@" 2>&1) && rc=0 || rc=$?
  [ "$rc" = 1 ] && grep -q "^kiln: error: " <<<"$out" && grep -qF -- "$phrase" <<<"$out" ||
    fail "kiln $*: exit $rc, expected 1 with '$phrase': $out"
}
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
# A domain kiln has no op of is not judged by its version.
"$kiln" run "$tmp/other_domain.onnx" > /dev/null || fail "other domain's opset refused"
echo "models cli ok"
