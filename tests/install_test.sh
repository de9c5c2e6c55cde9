#!/usr/bin/env bash
# kiln as a library other projects use: installs the build into a scratch
# prefix, then builds the README's consumer project (its CMakeLists.txt and
# classify.cpp blocks, extracted verbatim) against it with find_package, the
# same program with pkg-config, and configures a project that takes kiln with
# add_subdirectory, checking that it gets only the library. Each program runs
# the installed digits model.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log" || { cat "$tmp/install.log"; fail "cmake --install"; }
p=$tmp/prefix
for f in bin/kiln include/kiln/session.h lib/cmake/kiln/kilnConfig.cmake lib/cmake/kiln/kilnConfigVersion.cmake \
         lib/pkgconfig/kiln.pc share/kiln/models/digits/model.onnx; do
  [ -e "$p/$f" ] || fail "install lacks $f"
done
lib=$(ls "$p"/lib/libkiln.so.*.*.* 2>/dev/null | head -1)
[ -n "$lib" ] || fail "install lacks lib/libkiln.so.X.Y.Z"
soname=$(objdump -p "$lib" | awk '/SONAME/{print $2}')
[[ $soname =~ ^libkiln\.so\.[0-9]+\.[0-9]+$ ]] || fail "SONAME is '$soname'"
[ -e "$p/lib/$soname" ] && [ -e "$p/lib/libkiln.so" ] || fail "SONAME/dev symlinks missing"
# The installed CLI finds its library through its RPATH, from any folder.
"$p/bin/kiln" --version | grep -q "^kiln [0-9]" || fail "installed kiln --version"
"$p/bin/kiln" run "$p/share/kiln/models/digits/model.onnx" --input image="$p/share/kiln/models/digits/samples/digits10.npy" > "$tmp/run.txt" || fail "installed kiln run"
grep -q "output logits" "$tmp/run.txt" || fail "installed kiln run printed no logits"

# The README's consumer project, verbatim.
mkdir -p "$tmp/consumer"
/usr/bin/python3 - "$src/README.md" "$tmp/consumer" <<'PY'
import re, sys
readme = open(sys.argv[1]).read()
def block(after, lang):
    start = readme.index(after)
    m = re.compile(r"```" + lang + r"\n(.*?)```", re.S).search(readme, start)
    return m.group(1)
open(sys.argv[2] + "/CMakeLists.txt", "w").write(block("**As a library in your project**", "cmake"))
open(sys.argv[2] + "/classify.cpp", "w").write(block("## The C++ API", "cpp"))
PY
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$p" > "$tmp/cfg.log" 2>&1 \
  || { cat "$tmp/cfg.log"; fail "consumer configure (find_package(kiln))"; }
cmake --build "$tmp/consumer/build" > "$tmp/bld.log" 2>&1 || { cat "$tmp/bld.log"; fail "consumer build"; }
out=$("$tmp/consumer/build/classify" "$p/share/kiln/models/digits/model.onnx") || fail "consumer run"
echo "$out"
grep -q "^predicted digit: [0-9]$" <<< "$out" || fail "consumer printed no prediction"
# A bad model path is one error message and exit code 1.
if "$tmp/consumer/build/classify" "$tmp/missing.onnx" 2> "$tmp/err.txt"; then fail "missing model accepted"; fi
grep -q "missing.onnx" "$tmp/err.txt" || fail "error does not name the file: $(cat "$tmp/err.txt")"

# pkg-config, linked the ordinary way (no --whole-archive): ops still registered.
flags=$(PKG_CONFIG_PATH="$p/lib/pkgconfig" pkg-config --cflags --libs kiln) || fail "pkg-config kiln"
g++ -std=c++20 "$tmp/consumer/classify.cpp" -o "$tmp/classify_pc" $flags -Wl,-rpath,"$p/lib" || fail "pkg-config build"
out2=$("$tmp/classify_pc" "$p/share/kiln/models/digits/model.onnx") || fail "pkg-config program run"
[ "$out" == "$out2" ] || fail "pkg-config program printed something else: $out2"

# add_subdirectory: only the library is configured (no CLI, tests or examples).
mkdir -p "$tmp/sub"
cat > "$tmp/sub/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.16)
project(sub CXX)
set(CMAKE_CXX_STANDARD 20)
add_subdirectory("$src" kiln)
add_executable(classify "$tmp/consumer/classify.cpp")
target_link_libraries(classify PRIVATE kiln::kiln)
CM
cmake -S "$tmp/sub" -B "$tmp/sub/build" -G Ninja > "$tmp/sub.log" 2>&1 || { cat "$tmp/sub.log"; fail "add_subdirectory configure"; }
targets=$(ninja -C "$tmp/sub/build" -t targets all | sed 's/:.*//')
grep -qx "kiln" <<< "$targets" || fail "add_subdirectory has no kiln library target"
grep -qx "classify" <<< "$targets" || fail "add_subdirectory has no consumer target"
for t in kiln_cli kiln_tests classify_digits kiln_microbench; do
  if grep -qx "$t" <<< "$targets"; then fail "add_subdirectory builds $t"; fi
done
echo "install test: OK"
