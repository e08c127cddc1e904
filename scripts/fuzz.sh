#!/bin/bash
# fuzz.sh — builds the libFuzzer harnesses of tests/fuzz (clang, ASan + UBSan) and fuzzes each
# for a time budget; prints executions, coverage and findings.
#
#   scripts/fuzz.sh [--time SECONDS] [--jobs N] [--build DIR] [HARNESS…]
#
#   --time S    seconds per harness (default 60; CI runs 20 through scripts/test.sh)
#   --jobs N    harnesses fuzzed at the same time (default 1)
#   --build D   the fuzzing build directory (default build-fuzz; configured on first use)
#   HARNESS     gguf model mmproj tokenizer chat tensors vision-plan (default: all built)
#
# First the suite replays every seed and the committed corpus once (meson test --suite fuzz).
# Then each harness starts from its seeds (written from tests/data at build time), the committed
# corpus tests/fuzz/corpus/NAME (reproducers of past findings) and what earlier runs found in
# D/corpus/NAME, where new inputs go. Logs: D/fuzz-logs/NAME.log. A finding (crash, UB, leak,
# timeout, FUZZ_ASSERT) is written to D/fuzz-findings/NAME-…; the script then exits 1.
# Reproduce one with `D/tests/fuzz/fuzz-NAME FILE`; fix it and commit FILE to
# tests/fuzz/corpus/NAME/ so the suite replays it (meson test -C D --suite fuzz).
#
# Environment: CC (default clang), CI=true (warnings are errors), LFM2_FUZZ_NICE=N (run the
# fuzzers under nice -n N, for long runs on a shared machine).
set -euo pipefail
cd "$(dirname "$0")/.."

time_s=60
jobs=1
build=build-fuzz
harnesses=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) time_s=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    -*) echo "$0: unknown option $1" >&2; exit 2 ;;
    *) harnesses+=("$1"); shift ;;
  esac
done
case "$time_s$jobs" in *[!0-9]*) echo "$0: --time and --jobs take numbers" >&2; exit 2 ;; esac

extra=""
[ "${CI:-}" = "true" ] && extra="--werror"
# shellcheck disable=SC2086
CC=${CC:-clang} scripts/setup-debian.sh "$build" -Dfuzzing=true -Dtests=false \
  -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false $extra

if [ ${#harnesses[@]} -eq 0 ]; then
  for h in gguf model mmproj tokenizer chat tensors vision-plan; do
    [ -x "$build/tests/fuzz/fuzz-$h" ] && harnesses+=("$h")
  done
fi

# the committed reproducers and the seeds first, once each
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 meson test -C "$build" --suite fuzz \
  --no-rebuild --print-errorlogs --num-processes "$jobs" > "$build/fuzz-replay.log" 2>&1 || {
  cat "$build/fuzz-replay.log" >&2
  echo "fuzz: a committed reproducer or a seed fails" >&2
  exit 1
}

mkdir -p "$build/fuzz-logs" "$build/fuzz-findings"
export FUZZ_BUILD=$build FUZZ_TIME=$time_s FUZZ_NICE=${LFM2_FUZZ_NICE:-0}
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# per-input leak checks stay on (libFuzzer); the one at exit reports GLib's own allocations
export LSAN_OPTIONS=leak_check_at_exit=0

# One harness: fuzz for FUZZ_TIME seconds, then one summary line.
fuzz_one() {
  local h=$1 b=$FUZZ_BUILD dict="" rc=0
  local exe=$b/tests/fuzz/fuzz-$h log=$b/fuzz-logs/$h.log corpus=$b/corpus/$h
  [ -x "$exe" ] || { echo "$h: $exe not built" >&2; return 2; }
  mkdir -p "$corpus"
  case "$h" in
    gguf|model|mmproj) dict=tests/fuzz/gguf.dict ;;
    tokenizer|chat|vision-plan) dict=tests/fuzz/text.dict ;;
    tensors) dict=tests/fuzz/tensors.dict ;;
  esac
  local dirs=("$corpus" "$b/tests/fuzz/seeds/$h")
  [ -d "tests/fuzz/corpus/$h" ] && dirs+=("tests/fuzz/corpus/$h")
  nice -n "$FUZZ_NICE" "$exe" -max_total_time="$FUZZ_TIME" -timeout=30 -error_exitcode=1 \
    -timeout_exitcode=1 -print_final_stats=1 -artifact_prefix="$b/fuzz-findings/$h-" \
    ${dict:+-dict="$dict"} "${dirs[@]}" > "$log" 2>&1 || rc=$?
  # "#N DONE cov: C ft: F corp: K/…" and "stat::number_of_executed_units: N"
  local execs cov ft corp
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  corp=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  printf '%-12s execs=%-10s cov=%-6s ft=%-6s corpus=%-6s %s\n' "$h" "${execs:-?}" "${cov:-?}" \
    "${ft:-?}" "${corp:-?}" "$([ $rc -eq 0 ] && echo "findings=0" || echo "FINDING (exit $rc, see $log)")"
  return $rc
}
export -f fuzz_one

echo "fuzz: ${harnesses[*]}: ${time_s} s each, $jobs at a time"
status=0
printf '%s\n' "${harnesses[@]}" | xargs -P "$jobs" -I{} bash -c 'fuzz_one {}' || status=1
total=0
for h in "${harnesses[@]}"; do
  n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/fuzz-logs/$h.log" | tail -1)
  total=$((total + ${n:-0}))
done
echo "fuzz: $total executions in total"
if [ $status -ne 0 ]; then
  echo "fuzz: FINDINGS (inputs in $build/fuzz-findings, logs in $build/fuzz-logs)" >&2
  exit 1
fi
echo "fuzz: no findings"
