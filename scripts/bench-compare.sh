#!/bin/sh
# bench-compare.sh — lfm2 and llama.cpp side by side on the same GGUF files, interleaved.
#
#   scripts/bench-compare.sh [-p 512] [-n 128] [-r 3] [-R 3] [-t "1 2"] [-o OUT_DIR]
#                            [--lfm2 PATH] [--llama PATH] [--lock FILE] MODEL.gguf...
#   scripts/bench-compare.sh --table RAW.jsonl...     (the table of earlier runs, combined)
#
# For each of R rounds, for each model and thread count, runs `lfm2 bench --json` then
# `llama_ref bench` (llama.cpp's prebuilt CPU library, see shared/peer/README.md) back to back,
# so both see the same machine state; every run's JSON is kept in OUT_DIR/raw.jsonl. The table
# reports, per (model, threads, test), the median over rounds of each engine's per-round median,
# the ratio lfm2 / llama.cpp of those, and the median (and range) of the per-round ratios.
# Needs python3 (standard library only) for the table.
# --lock FILE holds flock(1) on FILE around each pair of runs, so benchmarks started by other
# people on a shared machine never overlap with these (they take the same lock).
set -eu

P=512 N=128 REPS=3 ROUNDS=3 THREADS="1 2" OUT="" LFM2="" LLAMA="" LOCK="" TABLE=0
while [ $# -gt 0 ]; do
    case "$1" in
    -p) P="$2"; shift 2 ;;
    -n) N="$2"; shift 2 ;;
    -r) REPS="$2"; shift 2 ;;
    -R) ROUNDS="$2"; shift 2 ;;
    -t) THREADS="$2"; shift 2 ;;
    -o) OUT="$2"; shift 2 ;;
    --lfm2) LFM2="$2"; shift 2 ;;
    --llama) LLAMA="$2"; shift 2 ;;
    --lock) LOCK="$2"; shift 2 ;;
    --table) TABLE=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "bench-compare: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
[ $# -ge 1 ] || { echo "bench-compare: no model given (see --help)" >&2; exit 2; }

table() {   # table RAW...: medians per (model, threads, test) over every run in the files
python3 - "$@" <<'PYEOF'
import json, os, statistics, sys
runs = [dict(json.loads(l), src=f) for f in sys.argv[1:] for l in open(f) if l.strip()]
p = str(runs[0]["result"].get("n_prompt", 512)) if runs else "512"
n = str(runs[0]["result"].get("n_gen", 128)) if runs else "128"
def val(r, test):
    res = r["result"]
    if r["engine"] == "lfm2":
        return res["prompt_tokens_per_s" if test == "pp" else "gen_tokens_per_s"]
    return res["pp_tps_median" if test == "pp" else "tg_tps_median"]
rss = {}
for r in runs:
    if r["engine"] == "lfm2":
        rss.setdefault((r["model"], r["threads"]), []).append(r["result"].get("peak_rss_bytes", 0))
keys = []
for r in runs:
    k = (r["model"], r["threads"])
    if k not in keys:
        keys.append(k)
print("| model | threads | test | lfm2 t/s | llama.cpp t/s | ratio | rounds | per-round ratios |")
print("|---|---|---|---|---|---|---|---|")
for model, t in keys:
    for test, name in (("pp", "pp" + p), ("tg", "tg" + n)):
        a = [val(r, test) for r in runs if r["engine"] == "lfm2" and r["model"] == model and r["threads"] == t]
        b = [val(r, test) for r in runs if r["engine"] == "llama.cpp" and r["model"] == model and r["threads"] == t]
        if not a or not b:
            continue
        ma, mb = statistics.median(a), statistics.median(b)
        # the two engines' runs of one round ran back to back: their ratio drifts less
        # with the machine than the medians do
        pair = {}
        for r in runs:
            if r["model"] == model and r["threads"] == t:
                pair.setdefault((r["src"], r["round"]), {})[r["engine"]] = val(r, test)
        rr = sorted(v["lfm2"] / v["llama.cpp"] for v in pair.values() if len(v) == 2)
        rs = f"median {statistics.median(rr):.2f}× ({rr[0]:.2f}–{rr[-1]:.2f})" if rr else ""
        print(f"| {os.path.basename(model)} | {t} | {name} | {ma:.1f} | {mb:.1f} | {ma / mb:.2f}× | {len(a)} | {rs} |")
print()
print("lfm2 peak RSS (MiB): " + ", ".join(f"{os.path.basename(m)} t={t}: {max(v) / 2**20:.0f}" for (m, t), v in rss.items()))
PYEOF
}
if [ "$TABLE" = 1 ]; then
    table "$@"
    exit 0
fi

here=$(cd "$(dirname "$0")/.." && pwd)
# default: the setup script's build, else the most recently built one
[ -n "$LFM2" ] || { [ -x "$here/build/tools/lfm2" ] && LFM2="$here/build/tools/lfm2"; } ||
    LFM2=$(ls -t "$here"/build*/tools/lfm2 2>/dev/null | head -n 1)
[ -n "$LLAMA" ] || LLAMA=$(command -v llama_ref || echo /work/.peer/bin/llama_ref)
[ -x "$LFM2" ] || { echo "bench-compare: lfm2 binary not found (use --lfm2)" >&2; exit 2; }
[ -x "$LLAMA" ] || { echo "bench-compare: llama_ref not found (sh shared/peer/setup.sh DIR; use --llama)" >&2; exit 2; }
[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/bench-compare.XXXXXX)
mkdir -p "$OUT"
RAW="$OUT/raw.jsonl"
: > "$RAW"

echo "lfm2: $LFM2 ($("$LFM2" --version))" >&2
echo "llama.cpp: $LLAMA ($("$LLAMA" version 2>&1 | head -n 1))" >&2
echo "raw results: $RAW" >&2

round=1
while [ "$round" -le "$ROUNDS" ]; do
    for m in "$@"; do
        for t in $THREADS; do
            echo "round $round: $(basename "$m") t=$t" >&2
            if [ -n "$LOCK" ]; then exec 9>"$LOCK"; flock 9; fi
            j=$("$LFM2" bench -m "$m" -p "$P" -n "$N" -t "$t" -r "$REPS" --json)
            printf '{"engine": "lfm2", "round": %d, "model": "%s", "threads": %d, "result": %s}\n' \
                "$round" "$m" "$t" "$j" >> "$RAW"
            j=$("$LLAMA" bench "$m" --pp "$P" --tg "$N" --reps "$REPS" --threads "$t" 2>/dev/null | tr -d '\n')
            printf '{"engine": "llama.cpp", "round": %d, "model": "%s", "threads": %d, "result": %s}\n' \
                "$round" "$m" "$t" "$j" >> "$RAW"
            if [ -n "$LOCK" ]; then exec 9>&-; fi
        done
    done
    round=$((round + 1))
done

table "$RAW"
