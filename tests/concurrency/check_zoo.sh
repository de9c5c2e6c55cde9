#!/usr/bin/env bash
# Concurrency over a model zoo: for every model folder (holding model.onnx)
# under ZOO, several threads run one session and every output must be
# bit-identical to a serial run of the same input (concurrency_check), with
# session threads 1 and 2, from the ONNX model and from an engine with a
# batch profile 1..3 whose runs mix batch sizes.
#   check_zoo.sh CHECKER ZOO [--runs M] [--workers N] [--models a,b,...]
# CI runs it on the small zoo (ctest concurrency_zoo_small); the whole zoo:
#   tools/zoo/export.py --out /tmp/zoo && tests/concurrency/check_zoo.sh build/tests/concurrency_check /tmp/zoo
set -euo pipefail
checker=$1 zoo=$2
shift 2
runs=50 workers=8 models=""
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    *) echo "check_zoo.sh: unknown option $1" >&2; exit 1 ;;
  esac
done
failed=0 checked=0
for dir in "$zoo"/*/; do
  name=$(basename "$dir")
  [ -f "$dir/model.onnx" ] || continue
  if [ -n "$models" ] && ! grep -qw "$name" <<< "${models//,/ }"; then continue; fi
  for threads in 1 2; do
    for mode in onnx engine; do
      extra=()
      [ "$mode" = engine ] && extra=(--engine --batch 1..3)
      if ! "$checker" "$dir/model.onnx" --threads "$threads" --workers "$workers" --runs "$runs" "${extra[@]}"; then
        echo "FAIL: $name ($mode, session threads $threads)"
        failed=$((failed + 1))
      fi
      checked=$((checked + 1))
    done
  done
  rm -f "$dir/model.onnx.concurrency.kiln"
done
echo "concurrency: $checked checks, $failed failed"
[ "$checked" -gt 0 ] || { echo "no model.onnx under $zoo" >&2; exit 1; }
[ "$failed" -eq 0 ]
