#!/usr/bin/env bash
# The inputs users give (kiln run/bench/profile/compare share them): literals
# in the input's dtype (--input sr=16000, ids=[1,2,3]), value ranges for
# random data (--val-range), a --shapes without a name for a one-input model,
# and dynamic dims that are never guessed: the model is refused with every
# open input and an example --shapes.
set -eu
kiln="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$(dirname "$0")/cli_expect.sh"

# sr: int64 scalar, ids: int64[3], x: float[n], passed through.
/usr/bin/python3 - "$tmp/m.onnx" <<'PY'
import sys
from onnx import TensorProto, helper, save
g = helper.make_graph(
    [helper.make_node("Identity", ["sr"], ["sr_out"]), helper.make_node("Identity", ["ids"], ["ids_out"]),
     helper.make_node("Identity", ["x"], ["x_out"])], "g",
    [helper.make_tensor_value_info("sr", TensorProto.INT64, []),
     helper.make_tensor_value_info("ids", TensorProto.INT64, [3]),
     helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
    [helper.make_tensor_value_info("sr_out", TensorProto.INT64, []),
     helper.make_tensor_value_info("ids_out", TensorProto.INT64, [3]),
     helper.make_tensor_value_info("x_out", TensorProto.FLOAT, ["n"])])
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), sys.argv[1])
PY
m="$tmp/m.onnx"

"$kiln" run "$m" -i sr=16000 -i "ids=[1, 2,3]" --shapes x:1000 --val-range x:10,20 -o "$tmp/out" > "$tmp/run.txt" ||
  fail "run with literals: $(cat "$tmp/run.txt")"
"$kiln" run "$m" -i sr=-7 -i "ids=[0,0,0]" --val-range 5,5 --shapes x:4 -o "$tmp/out2" > /dev/null || fail "run 2"
"$kiln" bench "$m" -i sr=1 -i "ids=[1,2,3]" --shapes x:8 --iterations 2 --warmup 0 --json > /dev/null || fail "bench"
/usr/bin/python3 - "$tmp" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
sr, ids, x = (np.load(f"{d}/out/{n}.npy") for n in ("sr_out", "ids_out", "x_out"))
assert sr.dtype == np.int64 and sr.shape == () and sr == 16000, sr
assert ids.dtype == np.int64 and ids.tolist() == [1, 2, 3], ids
assert x.shape == (1000,) and x.min() >= 10 and x.max() <= 20 and x.max() - x.min() > 5, (x.min(), x.max())
x2 = np.load(f"{d}/out2/x_out.npy")
assert (x2 == 5).all() and np.load(f"{d}/out2/sr_out.npy") == -7, x2
print("inputs ok")
PY

# Bad use: exit 1, one "kiln: error:" naming the problem.
for cmd in run bench profile compare; do
  expect_error "x: float[n]" $cmd "$m" -i sr=1 -i "ids=[1,2,3]"
done
expect_error "for example: --shapes x:1" run "$m" -i sr=1 -i "ids=[1,2,3]"
expect_error "'1.5' is not a int64 value" run "$m" -i sr=1.5 -i "ids=[1,2,3]" --shapes x:2
expect_error "out of the range of int64" run "$m" -i sr=99999999999999999999 --shapes x:2
expect_error "is not a literal" run "$m" -i "ids=[1,[2]]" --shapes x:2
expect_error "not a literal (16000, [1,2,3]) and not a tensor file" run "$m" -i sr=abc --shapes x:2
expect_error "which is not an input of the model (its inputs: sr, ids, x)" run "$m" -i nope=1 --shapes x:2
expect_error "gives 'sr' twice" run "$m" -i sr=1 -i sr=2 --shapes x:2
expect_error "LO must be finite and at most HI" run "$m" --val-range x:5,1 --shapes x:2
expect_error "is not [NAME:]LO,HI" run "$m" --val-range x:5 --shapes x:2
expect_error "--val-range names 'y'" run "$m" --val-range y:0,1 --shapes x:2
expect_error "holds no value of input 'sr'" run "$m" --val-range sr:0.2,0.8 --shapes x:2
expect_error "a shape without an input name needs a model with one input" run "$m" --shapes 2
expect_error "more than one shape without an input name" run "$m" --shapes 2,3
echo "inputs cli ok"
