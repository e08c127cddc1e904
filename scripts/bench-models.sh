#!/bin/sh
# bench-models.sh — writes the random-weight GGUF files docs/benchmarks.md measures:
# LFM2-350M- and LFM2-1.2B-shaped models in F16, Q8_0, Q4_0 and Q4_K (about 6 GB in all).
#
#   scripts/bench-models.sh [OUT_DIR] [--lfm2 PATH]
#
# The weights are random (lfm2 mkmodel, seed 0): speed depends only on the shapes and types.
set -eu
OUT="${1:-bench-models}"
LFM2=""
[ "${2:-}" = "--lfm2" ] && LFM2="${3:-}"
here=$(cd "$(dirname "$0")/.." && pwd)
[ -n "$LFM2" ] || LFM2=$(ls "$here"/build*/tools/lfm2 2>/dev/null | head -n 1)
[ -x "$LFM2" ] || { echo "bench-models: lfm2 binary not found (build first or pass --lfm2)" >&2; exit 2; }
mkdir -p "$OUT"
for cfg in 350m 1.2b; do
    for type in f16 q8_0 q4_0 q4_k; do
        f="$OUT/lfm2-$cfg-$type.gguf"
        [ -f "$f" ] || "$LFM2" mkmodel --config "$cfg" --type "$type" --threads 2 -o "$f"
    done
done
ls -l "$OUT"
