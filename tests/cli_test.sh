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
for sub in run conformance ops bench profile inspect build device; do check "$sub --help" 0 "$kiln" "$sub" --help; done
check "missing file" 1 "$kiln" run /nonexistent.onnx
# Output that cannot be written is an error, not a silent success.
check "stdout to /dev/full" 1 sh -c '"$0" run "$1" --shapes 1x1x8x8 > /dev/full' "$kiln" "$src/models/digits/model.onnx"
check "json to /dev/full" 1 sh -c '"$0" ops --format json > /dev/full' "$kiln"
# Idle OpenMP threads spin briefly by default (docs/threads.md); the
# environment's settings win. OMP_DISPLAY_ENV shows what libgomp read.
spin() { env "$@" OMP_DISPLAY_ENV=verbose "$kiln" --version 2>&1 | sed -n "s/^ *GOMP_SPINCOUNT = '\(.*\)'/\1/p"; }
[ "$(spin)" = 1000 ] || { echo "FAIL default spin count: $(spin)"; fail=1; }
[ "$(spin GOMP_SPINCOUNT=7)" = 7 ] || { echo "FAIL GOMP_SPINCOUNT=7: $(spin GOMP_SPINCOUNT=7)"; fail=1; }
[ "$(spin OMP_WAIT_POLICY=passive)" = 0 ] || { echo "FAIL OMP_WAIT_POLICY=passive: $(spin OMP_WAIT_POLICY=passive)"; fail=1; }
# kiln serve spins longer, so that a client's next request finds the threads awake.
serve_spin=$(OMP_DISPLAY_ENV=verbose "$kiln" serve --help 2>&1 | sed -n "s/^ *GOMP_SPINCOUNT = '\(.*\)'/\1/p")
[ "$serve_spin" = 10000 ] || { echo "FAIL kiln serve spin count: $serve_spin"; fail=1; }
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
# check_msg NAME PHRASE CMD...: exit code 1, a "kiln: error:" line, and PHRASE in the message.
check_msg() {
  local name="$1" phrase="$2"
  shift 2
  check "$name" 1 "$@"
  local out
  out=$("$@" 2>&1)
  grep -qF -- "$phrase" <<<"$out" || { echo "FAIL $name: message lacks '$phrase': $out"; fail=1; }
}
digits="$src/models/digits/model.onnx"
sweep() { "$kiln" bench "$digits" -n 1 --warmup 0 --shapes-sweep "$@"; }
check_msg "sweep unknown input" "no input 'nope'" sweep nope:1x1x8x8..2x1x8x8
check_msg "sweep rank mismatch" "has rank 2" sweep image:1x8..2x8
check_msg "sweep range goes down" "dim 0 goes down" sweep image:4x1x8x8..1x1x8x8
check_msg "sweep non-numeric dim" "bad dimension 'A'" sweep image:1xAx8x8..2x1x8x8
check_msg "sweep dims grow unevenly" "grow by 3 and 1" sweep image:1x1x8x8..4x1x9x8
check_msg "sweep groups of different lengths" "same number of shapes" sweep "image:1x1x8x8..3x1x8x8;b:1x8,2x8"
check_msg "sweep not NAME:SHAPES" "is not NAME:SHAPES" sweep 1x1x8x8
check_msg "sweep empty shape" "empty shape" sweep image:1x1x8x8,,2x1x8x8
check_msg "sweep step size" "no step size" sweep image:1x1x8x8..8x1x8x8:2
check_msg "sweep and --shapes on one input" "both --shapes and --shapes-sweep" sweep image:1x1x8x8 --shapes image:1x1x8x8
check_msg "sweep shape the model rejects" "shape image:1x2x8x8: input 'image'" sweep image:1x1x8x8,1x2x8x8
check "sweep with --output-dir" 1 "$kiln" bench "$digits" --shapes-sweep image:1x1x8x8 --output-dir /tmp/x
check "inspect missing file" 1 "$kiln" inspect /nonexistent.onnx
check "inspect bad --shapes" 1 "$kiln" inspect "$src/models/digits/model.onnx" --shapes image:1xAx8x8
check "inspect unsupported ops" 0 "$kiln" inspect "$src/tests/bad_models/unsupported_ops.onnx"
check "conformance on missing dir" 1 "$kiln" conformance /nonexistent-dir
# kiln device --json: the keys, a positive measured peak, and avx2 as /proc/cpuinfo says.
cpuinfo_avx2=false
grep -qw avx2 /proc/cpuinfo && cpuinfo_avx2=true
if ! out=$("$kiln" device --json) || ! /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])
for k in ("cpu", "cores", "logical_cpus", "isa", "features", "caches", "memory_bytes", "peak_gflops", "gemm_gflops", "int8_tops"):
    assert k in d, "missing key " + k
assert d["peak_gflops"]["per_core"] > 0, "peak_gflops.per_core not > 0"
assert d["int8_tops"] is None
assert d["features"]["avx2"] == (sys.argv[2] == "true"), "features.avx2 disagrees with /proc/cpuinfo"
' "$out" "$cpuinfo_avx2"; then
  echo "FAIL device --json: $out" | head -5
  fail=1
fi
if [ $fail = 0 ]; then echo "cli tests passed"; fi
exit $fail
