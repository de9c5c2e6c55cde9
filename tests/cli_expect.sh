# Helpers for the CLI test scripts (sourced): they set $kiln to the kiln
# program before sourcing this.

fail() { echo "FAIL: $*"; exit 1; }

# expect_error PHRASE ARGS...: `kiln ARGS` exits 1 with one "kiln: error:"
# message that contains PHRASE.
expect_error() {
  local phrase="$1" out rc
  shift
  out=$("$kiln" "$@" 2>&1) && rc=0 || rc=$?
  [ "$rc" = 1 ] && grep -q "^kiln: error: " <<<"$out" && grep -qF -- "$phrase" <<<"$out" ||
    fail "kiln $*: exit $rc, expected 1 with '$phrase': $out"
}
