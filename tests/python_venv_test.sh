#!/usr/bin/env bash
# The Python package installed as a user would (docs/python.md): a venv with
# Debian's site packages (numpy), `pip install --no-build-isolation` from the
# repository, with the extension and libkiln taken from this build
# (KILN_PREBUILT) instead of compiled again; then, from outside the source
# tree, `import kiln` and the digits example.
set -euo pipefail
build=$(cd "$1" && pwd)
repo=$(cd "$2" && pwd)
python="$3"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" -m venv --system-site-packages "$tmp/venv"
# A copy of the sources, so that the build's setuptools files stay out of the repository.
mkdir "$tmp/src"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$tmp/src")
KILN_PREBUILT="$build" "$tmp/venv/bin/pip" install --no-build-isolation --no-index -q "$tmp/src"
cd "$tmp"
version=$("$tmp/venv/bin/python" -c "import kiln; print(kiln.__version__)")
[ "$version" = "$("$build/kiln" --version | head -1 | awk '{print $2}')" ] || { echo "version $version"; exit 1; }
"$tmp/venv/bin/python" -c "import kiln, os; assert os.path.dirname(kiln.__file__).startswith('$tmp/venv'), kiln.__file__"
"$tmp/venv/bin/python" "$tmp/src/examples/python/classify_digits.py" | grep -q "accuracy 1.00"
echo "python venv ok"
