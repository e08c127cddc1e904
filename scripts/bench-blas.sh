#!/bin/sh
# bench-blas.sh — the engine's float-weight products against OpenBLAS's sgemm, interleaved.
#
#   scripts/bench-blas.sh [-R 3] [-t "1 2"] [-p "64 512"] [--lfm2 PATH] [--lock FILE]
#
# For each round, thread count, shape ({1024, 4608}: 350M FFN; {2048, 8192}: 1.2B FFN),
# token count and weight type (F32, F16), runs `lfm2 bench --matmul TYPE --prepared` (the
# layout the model loader uses) and then `--blas` (OpenBLAS sgemm on the same numbers) back to
# back, on each kernel path this CPU has: avx512 against OpenBLAS's own choice of kernel, avx2
# against OpenBLAS forced to its Haswell (AVX2) kernel, as on a CPU without AVX-512. Prints
# the median GMAC/s over rounds and the ratio lfm2 / OpenBLAS. F16 weights reach sgemm as an
# F32 copy (twice the memory), the input rounded to F16 as the engine's F16 products take it.
# Needs python3 (standard library only) for the table.
set -eu

ROUNDS=3 THREADS="1 2" TOKENS="64 512" LFM2="" LOCK=""
while [ $# -gt 0 ]; do
    case "$1" in
    -R) ROUNDS="$2"; shift 2 ;;
    -t) THREADS="$2"; shift 2 ;;
    -p) TOKENS="$2"; shift 2 ;;
    --lfm2) LFM2="$2"; shift 2 ;;
    --lock) LOCK="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "bench-blas.sh: unknown option '$1'" >&2; exit 1 ;;
    esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ -n "$LFM2" ] || LFM2="$ROOT/build/tools/lfm2"
[ -x "$LFM2" ] || { echo "bench-blas.sh: $LFM2 not built" >&2; exit 1; }
RAW=$(mktemp)
trap 'rm -f "$RAW"' EXIT

PATHS="avx2"
if "$LFM2" bench --matmul f32 -k 64 -o 16 -p 2 -r 1 --json 2>/dev/null | grep -q '"avx512"'; then
    PATHS="avx512 avx2"
fi
run() {  # run PATH CORETYPE ARGS...
    path=$1 core=$2; shift 2
    if [ -n "$LOCK" ]; then
        env LFM2_CPU_PATH=$path ${core:+OPENBLAS_CORETYPE=$core} flock "$LOCK" "$LFM2" bench "$@" --json
    else
        env LFM2_CPU_PATH=$path ${core:+OPENBLAS_CORETYPE=$core} "$LFM2" bench "$@" --json
    fi | sed "s/^{/{\"path\": \"$path\", /" >> "$RAW"
}
r=1
while [ "$r" -le "$ROUNDS" ]; do
    for t in $THREADS; do
        for shape in "1024 4608" "2048 8192"; do
            set -- $shape
            for p in $TOKENS; do
                for ty in f32 f16; do
                    for path in $PATHS; do
                        core=""
                        [ "$path" = avx2 ] && core=Haswell
                        run "$path" "$core" --matmul $ty -k "$1" -o "$2" -p "$p" -t "$t" -r 3 --prepared
                        run "$path" "$core" --matmul $ty -k "$1" -o "$2" -p "$p" -t "$t" -r 3 --blas
                    done
                done
            done
        done
    done
    r=$((r + 1))
done

python3 - "$RAW" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    key = (d["path"], d["threads"], d["k"], d["n_out"], d["n_tokens"], d["type"])
    rows.setdefault(key, {}).setdefault(d["cpu_path"] == "openblas", []).append(d["gmac_per_s"])
print("| path | threads | shape {k, out} | tokens | weights | lfm2 GMAC/s | OpenBLAS GMAC/s | lfm2 / OpenBLAS |")
print("|---|---|---|---|---|---|---|---|")
for key in sorted(rows):
    path, t, k, o, n, ty = key
    ours, blas = statistics.median(rows[key][False]), statistics.median(rows[key][True])
    print("| %s%s | %d | {%d, %d} | %d | %s | %.1f | %.1f | %.2fx |" % (
        path, "" if path == "avx512" else " (OpenBLAS Haswell)", t, k, o, n, ty, ours, blas,
        ours / blas))
PY
