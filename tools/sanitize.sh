#!/usr/bin/env bash
# Run the test suite against a debug build of skipnet's kernels: Cython bounds and initialisation
# checks on, -O1 -g, AddressSanitizer + UndefinedBehaviorSanitizer with every report fatal.
#
#   tools/sanitize.sh                      # the whole suite
#   tools/sanitize.sh tests/test_kernels.py -k relu    # any pytest arguments: a subset
#
# The build goes into a temporary copy of the tree (the checkout's own in-place build is untouched).
# Python is not instrumented, so the sanitizer runtimes are preloaded; leak detection is off because
# the interpreter itself keeps memory until exit. pytest captures at the Python level only
# (--capture=sys): a report is written to file descriptor 2 just before the process exits, and fd-level
# capture would swallow it. Needs gcc (or clang: CC=clang), and Cython, NumPy,
# SciPy and pytest/hypothesis in $PYTHON (default python3). Ends with "sanitizer reports: N" and exits
# non-zero when N > 0 or a test fails.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
python="$(command -v "${PYTHON:-python3}")" || { echo "no Python at ${PYTHON:-python3}"; exit 1; }
# absolute, without resolving symlinks (a venv's python is one): the tests run from another folder
[[ "$python" = /* ]] || python="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")"
cc="${CC:-gcc}"
work="$(mktemp -d "${TMPDIR:-/tmp}/skipnet-sanitize.XXXXXX")"
# SKIPNET_SANITIZE_KEEP=1 keeps the sanitized copy (to rerun a test in it by hand)
[ -n "${SKIPNET_SANITIZE_KEEP:-}" ] && echo "keeping $work" || trap 'rm -rf "$work"' EXIT

# the sources only: no build products, generated C, virtual environments or VCS data
tar -C "$root" --exclude=./build --exclude=./dist --exclude=./.git --exclude='./.venv*' --exclude='*.so' \
    --exclude='./csrc/*.c' --exclude=__pycache__ --exclude=.hypothesis --exclude=.pytest_cache -cf - . \
    | tar -C "$work" -xf -

echo "building the sanitized debug extension in $work ..."
(cd "$work" && CC="$cc" SKIPNET_DEBUG_BUILD=1 SKIPNET_SANITIZE=1 \
    "$python" setup.py -q build_ext --inplace --force > build.log 2>&1) \
    || { cat "$work/build.log"; exit 1; }
so="$(ls "$work"/skipnet/_kernels*.so)"
runtimes=""
for lib in libasan.so libubsan.so; do
    path="$("$cc" -print-file-name="$lib")"
    [ -e "$path" ] || { echo "$cc has no $lib: install its sanitizer runtimes"; exit 1; }
    runtimes="$runtimes $path"
done
ldd "$so" | grep libasan > /dev/null || { echo "the extension is not linked against libasan"; exit 1; }

log="$work/pytest.log"
set +e
(cd "$work" && \
    LD_PRELOAD="${runtimes# }" \
    ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:print_summary=1:${ASAN_OPTIONS:-}" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}" \
    PYTHONDONTWRITEBYTECODE=1 \
    "$python" -m pytest -q -p no:cacheprovider --capture=sys "$@" 2>&1) | tee "$log"
status=${PIPESTATUS[0]}
[ "$status" -le 128 ] || echo "pytest was killed by signal $((status - 128))"
set -e
reports=$(grep -cE "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer" "$log" || true)
echo "sanitizer reports: $reports"
[ "$reports" -eq 0 ] && [ "$status" -eq 0 ]
