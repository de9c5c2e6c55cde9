#!/usr/bin/env bash
# kiln export-onnx: every model given (digits, and the zoo folders passed as
# arguments) is written back out, passes onnx.checker (full check, shape
# inference included), and gives bit-identical outputs to the original in
# kiln on the same inputs. --optimized writes kiln's graph, which kiln runs
# with the same outputs (within rounding: it is the same graph), and so does
# an engine's export, its packed weights unpacked. Bad use exits 1 with a
# message.
set -eu
kiln="$1"
repo="$2"
shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
models=("$repo/models/digits/model.onnx")
for d in "$@"; do
  for m in "$d"/*/model.onnx; do [ -f "$m" ] && models+=("$m"); done
done
for m in "${models[@]}"; do
  name=$(basename "$(dirname "$m")")
  "$kiln" export-onnx "$m" -o "$tmp/$name.onnx" > /dev/null
  /usr/bin/python3 -c "import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)" "$tmp/$name.onnx"
  # The test data's inputs (dynamic dims are never guessed).
  mapfile -t feed < <(/usr/bin/python3 -c "
import glob, onnx, sys
m = onnx.load(sys.argv[1], load_external_data=False)
inits = {i.name for i in m.graph.initializer}
names = [i.name for i in m.graph.input if i.name not in inits]
files = sorted(glob.glob(sys.argv[2] + '/input_*.pb'), key=lambda f: int(f.rsplit('_', 1)[1][:-3]))
for n, f in zip(names, files): print('--input=' + n + '=' + f)" "$m" "$(dirname "$m")/test_data_set_0")
  "$kiln" run "$m" "${feed[@]}" --output-dir "$tmp/$name.ref" > /dev/null
  "$kiln" compare "$tmp/$name.onnx" "${feed[@]}" --ref "$tmp/$name.ref" --rtol 0 --atol 0 > "$tmp/out.txt" ||
    { echo "$name: round trip differs"; cat "$tmp/out.txt"; exit 1; }
  "$kiln" export-onnx "$m" -o "$tmp/$name.opt.onnx" --optimized > /dev/null
  # Valid ONNX too: what kiln fused is written as kiln-domain ops.
  /usr/bin/python3 -c "import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)" "$tmp/$name.opt.onnx"
  "$kiln" compare "$tmp/$name.opt.onnx" "${feed[@]}" --ref "$tmp/$name.ref" --rtol 1e-4 --atol 1e-5 > "$tmp/out.txt" ||
    { echo "$name: optimized export differs"; cat "$tmp/out.txt"; exit 1; }
  # An engine (static, at the test data's shapes) is written with its packed
  # weights unpacked, and computes the same as the model.
  shapes=$(/usr/bin/python3 -c "
import sys
from onnx import TensorProto
shapes = []
for arg in sys.argv[1:]:
    name, f = arg[len('--input='):].split('=', 1)
    t = TensorProto()
    t.ParseFromString(open(f, 'rb').read())
    shapes.append(name + ':' + ('x'.join(map(str, t.dims)) or '1'))
print(','.join(shapes))" "${feed[@]}")
  "$kiln" build "$m" -o "$tmp/$name.kiln" --shapes "$shapes" --no-tactic-timing "${feed[@]}" > /dev/null
  "$kiln" export-onnx "$tmp/$name.kiln" -o "$tmp/$name.engine.onnx" > /dev/null
  /usr/bin/python3 -c "import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]))" "$tmp/$name.engine.onnx"
  "$kiln" compare "$tmp/$name.engine.onnx" "${feed[@]}" --ref "$tmp/$name.ref" --rtol 1e-4 --atol 1e-5 > "$tmp/out.txt" ||
    { echo "$name: exported engine differs"; cat "$tmp/out.txt"; exit 1; }
  echo "$name: exported, checked, identical; engine exported"
done
rc=0
"$kiln" export-onnx "$tmp/missing.onnx" -o "$tmp/x.onnx" 2> "$tmp/err.txt" || rc=$?
[ "$rc" = 1 ] && grep -q missing.onnx "$tmp/err.txt"
rc=0
"$kiln" export-onnx "${models[0]}" -o "$tmp/no/such/dir/x.onnx" 2> "$tmp/err.txt" || rc=$?
[ "$rc" = 1 ] && grep -q "no/such/dir" "$tmp/err.txt"
echo "export-onnx ok"
