#!/bin/sh
# Builds lfm2-gst and runs the whole test suite: once optimized, once under
# AddressSanitizer + UndefinedBehaviorSanitizer.   usage: scripts/test.sh [--no-sanitizers]
set -eu
cd "$(dirname "$0")/.."

EXTRA=""
[ "${CI:-}" = "true" ] && EXTRA="--werror"   # warnings are errors in CI

scripts/setup-debian.sh build $EXTRA
meson test -C build --print-errorlogs --num-processes 2

if [ "${1:-}" != "--no-sanitizers" ]; then
  scripts/setup-debian.sh build-asan -Dbuildtype=debugoptimized -Db_sanitize=address,undefined \
    -Db_lundef=false $EXTRA
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0 \
    meson test -C build-asan --print-errorlogs --num-processes 2 --timeout-multiplier 3
fi
echo "all tests passed"
