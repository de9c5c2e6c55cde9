#!/usr/bin/env bash
# CLI contract: --help everywhere, --version, exit code 1 with a one-line
# "kiln: error:" message for every bad input, never a crash.
set -u
kiln="$1"
src="$2"
fail=0
check() {  # check NAME EXPECTED_RC CMD...
  local name="$1" want="$2"
  shift 2
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" != "$want" ]; then
    echo "FAIL $name: exit code $rc, expected $want"
    echo "$out" | head -5
    fail=1
  fi
  if [ "$want" = 1 ] && ! grep -q "^kiln: error: " <<<"$out"; then
    echo "FAIL $name: no 'kiln: error:' line"
    echo "$out" | head -5
    fail=1
  fi
}
check "--version" 0 "$kiln" --version
check "--help" 0 "$kiln" --help
for sub in run conformance ops bench profile inspect; do check "$sub --help" 0 "$kiln" "$sub" --help; done
check "missing file" 1 "$kiln" run /nonexistent.onnx
check "unknown flag" 1 "$kiln" run --bogus-flag x.onnx
while IFS=$'\t' read -r file phrase; do
  case "$file" in '#'*|'') continue ;; esac
  check "run $file" 1 "$kiln" run "$src/tests/bad_models/$file"
  out=$("$kiln" run "$src/tests/bad_models/$file" 2>&1)
  grep -qF -- "$phrase" <<<"$out" || { echo "FAIL run $file: message lacks '$phrase': $out"; fail=1; }
done <"$src/tests/bad_models/expected_errors.tsv"
check "bad --shapes" 1 "$kiln" run "$src/models/digits/model.onnx" --shapes image:1xAx8x8
check "bad --input spec" 1 "$kiln" run "$src/models/digits/model.onnx" --input image
check "wrong input name" 1 "$kiln" run "$src/models/digits/model.onnx" --input nope="$src/models/digits/samples/digits10.npy"
check "input file missing" 1 "$kiln" run "$src/models/digits/model.onnx" --input image=/nonexistent.npy
check "not a tensor file" 1 "$kiln" run "$src/models/digits/model.onnx" --input image="$src/models/digits/model.onnx"
check "bench missing file" 1 "$kiln" bench /nonexistent.onnx
check "bench bad --iterations" 1 "$kiln" bench "$src/models/digits/model.onnx" --iterations 0
check "bench --iterations with --duration" 1 "$kiln" bench "$src/models/digits/model.onnx" --iterations 3 --duration 1
check "inspect missing file" 1 "$kiln" inspect /nonexistent.onnx
check "inspect bad --shapes" 1 "$kiln" inspect "$src/models/digits/model.onnx" --shapes image:1xAx8x8
check "inspect unsupported ops" 0 "$kiln" inspect "$src/tests/bad_models/unsupported_ops.onnx"
check "conformance on missing dir" 1 "$kiln" conformance /nonexistent-dir
if [ $fail = 0 ]; then echo "cli tests passed"; fi
exit $fail
