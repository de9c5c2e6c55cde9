#!/usr/bin/env bash
# kiln compare --per-layer against ONNX Runtime: no divergence on the small
# zoo models (every intermediate value within tolerance), and a fault
# injected into one node (KILN_TEST_PERTURB_NODE) found as the first
# divergence. ONNX Runtime (onnxruntime-node, a test reference only) is
# installed into BUILD/ort with npm when KILN_ORT_DIR does not name an
# install; without node/npm or the network the test is skipped (exit 77).
set -eu
kiln="$1"
repo="$2"
build="$3"
ort_dir="${KILN_ORT_DIR:-$build/ort}"
if [ ! -f "$ort_dir/node_modules/onnxruntime-node/package.json" ]; then
  if ! command -v npm > /dev/null || ! command -v node > /dev/null; then echo "no node/npm: skipped"; exit 77; fi
  if ! npm install --prefix "$ort_dir" --ignore-scripts --no-audit --no-fund --no-save \
       onnxruntime-node@1.30.0 > "$build/ort-install.log" 2>&1; then
    echo "npm install of onnxruntime-node failed (see $build/ort-install.log): skipped"; exit 77
  fi
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A fault in one node of the digits model is the first divergence.
victim=/features/features.3/Conv
rc=0
KILN_TEST_PERTURB_NODE=$victim "$kiln" compare "$repo/models/digits/model.onnx" --shapes 1x1x8x8 --ref ort --per-layer \
  --ort-dir "$ort_dir" > "$tmp/bad.txt" || rc=$?
[ "$rc" = 2 ] || { echo "perturbed run: exit $rc"; cat "$tmp/bad.txt"; exit 1; }
grep -q "first divergence: node '$victim' (Conv)" "$tmp/bad.txt" || { cat "$tmp/bad.txt"; exit 1; }

# Every layer of the small zoo models (zoo_small's exports) and of digits
# agrees with ONNX Runtime, on the test data's inputs.
for dir in "$repo/models/digits" "$build"/zoo/*/; do
  [ -f "$dir/model.onnx" ] || continue
  inputs=()
  k=0
  for f in "$dir"/test_data_set_0/input_*.pb; do
    name=$(/usr/bin/python3 -c "import onnx,sys; t=onnx.TensorProto(); t.ParseFromString(open(sys.argv[1],'rb').read()); print(t.name)" "$f")
    inputs+=(--input "$name=$f")
    k=$((k + 1))
  done
  if ! "$kiln" compare "$dir/model.onnx" --ref ort --per-layer --ort-dir "$ort_dir" "${inputs[@]}" --threads 1 \
       > "$tmp/out.txt" 2>&1; then
    echo "divergence in $dir:"; cat "$tmp/out.txt"; exit 1
  fi
  echo "$(basename "$dir"): $(grep 'values compared' "$tmp/out.txt")"
done
echo "compare vs ONNX Runtime ok"
