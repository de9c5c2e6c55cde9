#!/usr/bin/env bash
# `kiln graph` on every model of the zoo (tools/zoo/export.py --out DIR), as
# imported and optimized: an SVG with one node element per graph node and
# per node inside a control-flow body (the counts kiln prints, checked
# against the SVG), each within a time limit.
# Exit 77 (skipped) when the zoo is not there.
set -eu
kiln="$1"
zoo="$2"
limit="${3:-30}"  # seconds per picture; a few seconds on an idle machine
[ -d "$zoo" ] || { echo "graph_zoo_test: no zoo at $zoo, skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
models=0
for m in "$zoo"/*/model.onnx; do
  [ -e "$m" ] || continue
  name=$(basename "$(dirname "$m")")
  for mode in imported optimized; do
    flag=""
    [ "$mode" = optimized ] && flag="--optimized"
    start=$(date +%s%N)
    "$kiln" graph "$m" $flag -o "$tmp/$name.svg" 2> "$tmp/log.txt" || { cat "$tmp/log.txt" >&2; exit 1; }
    ms=$((($(date +%s%N) - start) / 1000000))
    # "N nodes (", or with control flow "N nodes, M more in K control-flow bodies ("
    nodes=$(sed -n 's/.*: \([0-9]*\) nodes\(, [0-9]* more\)\?\( in [0-9]* control-flow bodies\)\? (.*/\1\2/p' "$tmp/log.txt")
    drawn=$(python3 - "$tmp/$name.svg" <<'PY'
import re, sys
import xml.etree.ElementTree as ET
S = "{http://www.w3.org/2000/svg}"
ids = [g.find(S + "title").text for g in ET.parse(sys.argv[1]).iter(S + "g") if "node" in g.get("class", "").split()]
top = sum(1 for i in ids if re.fullmatch(r"n\d+", i))
body = sum(1 for i in ids if re.fullmatch(r"n\d+(_\w+?_n\d+)+", i))
print(top if not body else f"{top}, {body} more")
PY
)
    printf "%-30s %-9s %5s nodes %6d ms\n" "$name" "$mode" "$nodes" "$ms"
    [ "$drawn" = "$nodes" ] || { echo "graph_zoo_test: $name $mode: $drawn node elements, $nodes nodes" >&2; exit 1; }
    if [ "$ms" -gt $((limit * 1000)) ]; then
      echo "graph_zoo_test: $name $mode took $ms ms (limit $limit s)" >&2
      exit 1
    fi
  done
  models=$((models + 1))
done
[ "$models" -gt 0 ] || { echo "graph_zoo_test: no models in $zoo, skipped"; exit 77; }
echo "graph_zoo_test: $models models ok"
