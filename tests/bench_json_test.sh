#!/usr/bin/env bash
# `kiln bench --json` prints exactly one JSON object with the documented keys.
set -eu
kiln="$1"
model="$2"
out=$("$kiln" bench "$model" --iterations 5 --warmup 1 --json)
python3 - "$out" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
want = ["session_create_ms", "latency_ms", "throughput_per_s", "peak_rss_bytes", "arena_bytes", "threads", "iterations"]
missing = [k for k in want if k not in j]
missing += ["latency_ms." + k for k in ["min", "median", "mean", "p90", "p99"] if k not in j.get("latency_ms", {})]
assert not missing, f"missing keys: {missing}"
assert j["iterations"] == 5, j["iterations"]
lat = j["latency_ms"]
assert 0 < lat["min"] <= lat["median"] <= lat["p99"], lat
assert j["peak_rss_bytes"] > 0 and j["throughput_per_s"] > 0, j
print("bench json ok")
PY
