#!/bin/sh
# Builds lfm2-gst and runs the whole test suite: once optimized, once under
# AddressSanitizer + UndefinedBehaviorSanitizer, then runs the fuzz harnesses briefly (clang).
#   usage: scripts/test.sh [--no-sanitizers]
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
# libFuzzer harnesses (tests/fuzz; clang, ASan + UBSan in build-fuzz): the committed corpus,
# then a short fuzzing run of each (LFM2_FUZZ_TIME seconds, default 20; 0 skips them).
fuzz_time=${LFM2_FUZZ_TIME:-20}
if [ "${1:-}" != "--no-sanitizers" ] && [ "$fuzz_time" != 0 ]; then
  scripts/fuzz.sh --time "$fuzz_time" --jobs 2
fi
echo "all tests passed"
