#!/bin/sh
# soak.sh — runs a live pipeline for a long time and watches the process: RSS, threads, open
# descriptors and caption delay, sampled every N seconds into a CSV, with a pass/fail summary
# of the drift after a warm-up.
#
#   scripts/soak.sh [--pipeline captioning] [--duration SEC] [--interval SEC] [--warmup SEC]
#                   [--out DIR] [--model GGUF --mmproj GGUF] [--size WxH] [--fps N]
#                   [--threads N] [--max-tokens N]
#
# --pipeline captioning (default): the live-captioning graph of pipelines/live-captioning.sh
# run by gst-launch-1.0, with two changes that keep memory that grows by design out of the
# figures: the video goes to a clock-synchronised fakesink instead of an MP4 (a muxer keeps
# its index in memory), and textoverlay does not wait for the text (with wait-text=true the
# queue in front of it holds as much video as the caption delay, 30 fps × delay, so RSS would
# follow the load of the machine rather than the pipeline's own memory):
#
#   videotestsrc is-live=true ! video/x-raw,… ! lfm2vl name=vl … ! queue ! textoverlay name=ov
#       wait-text=false ! videoconvert ! fakesink sync=true
#   vl.text_src ! tee name=t ! queue ! ov.text_sink   t. ! queue ! srtenc ! filesink
#
# Live transcription (lfm2asr) and speech-to-speech (lfm2asr ! lfm2tts) join here as
# --pipeline transcription / speech-to-speech when those elements exist: add their graph in
# pipeline_args() below and, if their delay is logged differently, in delays().
#
# Sampled from /proc/PID of gst-launch-1.0 (the whole pipeline's process) every --interval
# seconds (default 10): RSS (kB), threads, descriptors, CPU % since the last sample, the load
# average of the machine; and from lfm2vl's debug log (GST_DEBUG=lfm2vl:5, its
# "caption of … behind the clock" line, the element's own measure: pipeline clock minus the
# running time of the frame when the caption is pushed) the captions of the interval, their
# mean inference time and mean/max delay. Files in --out (default soak-out): soak.csv,
# summary.txt, gst.log (the debug log), gst-launch.out, soak.srt.
#
# Pass/fail after --warmup seconds (default: 10 % of the duration, at least 60 s):
#   RSS drift  median RSS of the last 10 samples vs the first 10: at most 1 %
#   threads, descriptors: no growth (the largest count of the last quarter at most that of
#              the first; GLib's thread pools start and retire idle threads on their own)
#   no error   gst-launch-1.0 exits 0 after EOS and prints no ERROR
#   delay      median caption delay of the last quarter at most that of the first quarter
#              + max(25 %, 100 ms)
#   no stall   captions keep coming: no gap between two captions longer than the second
#              one's inference time + 10 s (a slow caption on a starved CPU is not a stall;
#              a worker that waits is), and the last caption at most 120 s before the end
# Exit status 0 on pass, 1 on fail, 2 on bad usage.
#
#   scripts/soak.sh --summarize DIR [--warmup SEC]   recomputes DIR/summary.txt from a run's
#                                                    soak.csv, gst.log and exit-status
set -eu

here=$(cd "$(dirname "$0")" && pwd)
data=$(cd "$here/../tests/data/vision" && pwd)
pipeline=captioning
duration=3600
interval=10
warmup=""
out=soak-out
model=$data/lfm2-vl-tiny-text-q4_0.gguf
mmproj=$data/lfm2-vl-tiny-mmproj-f32.gguf
size=640x360
fps=30
threads=0
max_tokens=32
summarize_only=""

need() { [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --pipeline) need "$@"; pipeline=$2; shift 2 ;;
    --duration) need "$@"; duration=$2; shift 2 ;;
    --interval) need "$@"; interval=$2; shift 2 ;;
    --warmup) need "$@"; warmup=$2; shift 2 ;;
    --out) need "$@"; out=$2; shift 2 ;;
    --model) need "$@"; model=$2; shift 2 ;;
    --mmproj) need "$@"; mmproj=$2; shift 2 ;;
    --size) need "$@"; size=$2; shift 2 ;;
    --fps) need "$@"; fps=$2; shift 2 ;;
    --threads) need "$@"; threads=$2; shift 2 ;;
    --max-tokens) need "$@"; max_tokens=$2; shift 2 ;;
    --summarize) need "$@"; summarize_only=$2; shift 2 ;;
    -h|--help) sed -n '2,45p' "$0"; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$duration$interval${warmup}$fps$threads$max_tokens" in
  *[!0-9]*) echo "$0: --duration, --interval, --warmup, --fps, --threads, --max-tokens take whole numbers" >&2; exit 2 ;;
esac
case "$size" in *x*) ;; *) echo "$0: --size wants WxH" >&2; exit 2 ;; esac
[ "$interval" -gt 0 ] || { echo "$0: --interval must be positive" >&2; exit 2; }
if [ -z "$warmup" ]; then
  warmup=$((duration / 10))
  [ "$warmup" -ge 60 ] || warmup=60
fi
[ "$warmup" -lt "$duration" ] || { echo "$0: --warmup must be shorter than --duration" >&2; exit 2; }

# ---- summary -----------------------------------------------------------------------------------

# Captions of the debug log after the warm-up, as "time_s inference_ms" (the log's first field is
# the time since gst-launch started).
caption_times() {
  sed -n 's/^\([0-9]*:[0-9]*:[0-9.]*\) .*caption of [^(]*([0-9]* tokens, \([0-9.]*\) ms, .* behind the clock).*/\1 \2/p' "$log" |
    awk -v warm="$warmup" '{ split($1, t, ":"); s = (t[1] * 60 + t[2]) * 60 + t[3]
                             if (s >= warm) printf "%.3f %s\n", s, $2 }'
}

# Writes $summary from $csv, $log and $out/exit-status; returns 0 on pass.
summarize() {
  rc=$(cat "$out/exit-status" 2>/dev/null || echo 1)
  errs=$(grep -c '^ERROR' "$out/gst-launch.out" 2>/dev/null || true)
  end=$(tail -n 1 "$csv" | cut -d, -f1)
  # the longest gap between captions beyond the second caption's own inference time
  # (the largest excess, where, that gap, its inference time, the longest gap, the time from the
  # last caption to the end)
  gaps=$(caption_times | awk -v end="$end" '
    NR > 1 { x = ($1 - p) - $2 / 1000; if (x > worst) { worst = x; at = p; gap = $1 - p; inf = $2 / 1000 }
             if ($1 - p > longest) longest = $1 - p }
    { p = $1 } END { printf "%.1f %.0f %.1f %.1f %.1f %.0f", worst, at, gap, inf, longest, (end > p ? end - p : 0) }')
  awk -F, -v warm="$warmup" -v rc="$rc" -v errs="${errs:-0}" -v gaps="$gaps" '
  NR == 1 { next }
  $1 >= warm { n++; rss[n] = $2; thr[n] = $3; fd[n] = $4; del[n] = $9
               if (n == 1 || $3 < tmin) tmin = $3; if (n == 1 || $3 > tmax) tmax = $3
               if (n == 1 || $4 < fmin) fmin = $4; if (n == 1 || $4 > fmax) fmax = $4
               if ($7 == 0) empty++ }
  function maxof(a, lo, hi,   i, m) { m = a[lo] + 0; for (i = lo; i <= hi; i++) if (a[i] + 0 > m) m = a[i] + 0; return m }
  function median(a, lo, hi,   i, j, t, m, b) {
    m = 0; for (i = lo; i <= hi; i++) if (a[i] != "") b[++m] = a[i] + 0
    for (i = 2; i <= m; i++) { t = b[i]; for (j = i - 1; j >= 1 && b[j] > t; j--) b[j + 1] = b[j]; b[j + 1] = t }
    if (m == 0) return ""
    return m % 2 ? b[(m + 1) / 2] : (b[m / 2] + b[m / 2 + 1]) / 2 }
  END {
    if (n < 20) { print "FAIL: only " n " samples after the warm-up (need 20)"; exit 1 }
    k = 10; r0 = median(rss, 1, k); r1 = median(rss, n - k + 1, n)
    drift = (r1 - r0) * 100 / r0
    q = int(n / 4); d0 = median(del, 1, q); d1 = median(del, n - q + 1, n)
    lim = d0 + (d0 * 0.25 > 100 ? d0 * 0.25 : 100)
    t0 = maxof(thr, 1, q); t1 = maxof(thr, n - q + 1, n); f0 = maxof(fd, 1, q); f1 = maxof(fd, n - q + 1, n)
    split(gaps, g, " ")
    stall_ok = gaps != "" && g[1] <= 10 && g[6] <= 120
    printf "samples after warm-up: %d\n", n
    printf "RSS: %d kB -> %d kB (medians of the first and last 10 samples), drift %+.2f %%: %s\n", r0, r1, drift, (drift <= 1 ? "pass" : "FAIL")
    printf "threads: %d..%d, largest %d (first quarter) -> %d (last quarter): %s\n", tmin, tmax, t0, t1, (t1 <= t0 ? "pass" : "FAIL")
    printf "descriptors: %d..%d, largest %d -> %d: %s\n", fmin, fmax, f0, f1, (f1 <= f0 ? "pass" : "FAIL")
    printf "caption delay: median %s ms (first quarter) -> %s ms (last quarter), limit %.0f ms: %s\n", d0, d1, lim, (d1 != "" && d1 <= lim ? "pass" : "FAIL")
    printf "captions: longest gap %.1f s; largest gap beyond the inference time of the caption ending it %.1f s (%.1f s at %d s, %.1f s inference); last caption %d s before the end; samples without a caption %d: %s\n", g[5], g[1], g[3], g[2], g[4], g[6], empty, (stall_ok ? "pass" : "FAIL")
    printf "gst-launch-1.0: exit %d, %d ERROR lines: %s\n", rc, errs, (rc == 0 && errs == 0 ? "pass" : "FAIL")
    ok = drift <= 1 && t1 <= t0 && f1 <= f0 && d1 != "" && d1 <= lim && stall_ok && rc == 0 && errs == 0
    print (ok ? "PASS" : "FAIL")
    exit ok ? 0 : 1 }' "$csv" > "$summary"
}

if [ -n "$summarize_only" ]; then
  out=$summarize_only
  csv=$out/soak.csv
  log=$out/gst.log
  summary=$out/summary.txt
  status=0
  summarize || status=1
  cat "$summary"
  exit $status
fi

build=${LFM2_BUILD:-$here/../build}
[ -f "$build/plugins/libgstlfm2.so" ] || { echo "$0: $build/plugins/libgstlfm2.so not built (ninja -C $build)" >&2; exit 2; }
GST_PLUGIN_PATH="$build/plugins${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
export GST_PLUGIN_PATH
mkdir -p "$out"
out=$(cd "$out" && pwd)
csv=$out/soak.csv
log=$out/gst.log
summary=$out/summary.txt
# a registry of our own: the run does not depend on (or rewrite) the user's
GST_REGISTRY_1_0=$out/registry.bin
export GST_REGISTRY_1_0

v() { printf '%s' "$1" | sed 's/\\/\\\\/g'; }

# The pipeline as gst-launch-1.0 arguments.
pipeline_args() {
  q="queue max-size-buffers=0 max-size-bytes=0 max-size-time=0"
  case "$pipeline" in
    captioning)
      # shellcheck disable=SC2086
      # a camera's format (left open, videotestsrc paints 8 bytes a pixel: lfm2vl.md)
      set -- videotestsrc is-live=true pattern=smpte horizontal-speed=2 ! \
        "video/x-raw,format=I420,width=${size%x*},height=${size#*x},framerate=$fps/1" ! \
        lfm2vl name=vl "model=$(v "$model")" "mmproj=$(v "$mmproj")" n-threads="$threads" \
        max-tokens="$max_tokens" ! $q ! \
        textoverlay name=ov wait-text=false valignment=bottom halignment=center \
        wrap-mode=word shaded-background=true ! videoconvert ! fakesink sync=true \
        vl.text_src ! tee name=t ! $q ! ov.text_sink \
        t. ! $q ! srtenc ! filesink "location=$(v "$out/soak.srt")"
      ;;
    transcription|speech-to-speech)
      echo "$0: --pipeline $pipeline: the element is not in this tree yet (add its graph here)" >&2
      exit 2 ;;
    *) echo "$0: unknown --pipeline $pipeline (captioning)" >&2; exit 2 ;;
  esac
  for a in "$@"; do printf '%s\n' "$a"; done
}

# Caption lines of the debug log from line $1 on: "inference_ms delay_ms" per caption.
# lfm2vl writes "caption of PTS (N tokens, T ms, K skipped, ±H:MM:SS.NNNNNNNNN behind the
# clock): text".
delays() {
  tail -n "+$1" "$log" 2>/dev/null | sed -n \
    's/.*caption of [^(]*([0-9]* tokens, \([0-9.]*\) ms, [0-9]* skipped, \([-+]*[0-9:.]*\) behind the clock).*/\1 \2/p' |
    awk '{ s = $2; sign = 1; if (substr(s, 1, 1) == "-") sign = -1; gsub(/^[-+]/, "", s);
           n = split(s, t, ":"); ms = sign * ((t[1] * 60 + t[2]) * 60 + t[3]) * 1000;
           printf "%s %.1f\n", $1, ms }'
}

proc_field() { awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$pid/status" 2>/dev/null; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null; }

# the arguments, one per line, back into "$@" (none contains a newline)
args=$(pipeline_args)
old_ifs=$IFS
IFS='
'
# shellcheck disable=SC2086
set -- $args
IFS=$old_ifs

echo "soak: $pipeline for ${duration} s, samples every ${interval} s, warm-up ${warmup} s, into $out" >&2
echo "soak: gst-launch-1.0 -e $*" >&2
: > "$log"
GST_DEBUG=lfm2vl:5 GST_DEBUG_NO_COLOR=1 GST_DEBUG_FILE=$log \
  gst-launch-1.0 -e "$@" > "$out/gst-launch.out" 2>&1 &
pid=$!
hz=$(getconf CLK_TCK)

echo "elapsed_s,rss_kb,threads,fds,cpu_pct,load1,captions,caption_ms_mean,delay_ms_mean,delay_ms_max" > "$csv"
start=$(date +%s)
line=1
ticks0=$(cpu_ticks || echo 0)
t0=$start
while :; do
  sleep "$interval"
  kill -0 "$pid" 2>/dev/null || break
  now=$(date +%s)
  elapsed=$((now - start))
  rss=$(proc_field VmRSS)
  thr=$(proc_field Threads)
  fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
  ticks=$(cpu_ticks || echo "$ticks0")
  cpu=$(awk -v a="$ticks0" -v b="$ticks" -v dt=$((now - t0)) -v hz="$hz" \
    'BEGIN { printf "%.0f", (dt > 0 ? (b - a) * 100 / hz / dt : 0) }')
  ticks0=$ticks
  t0=$now
  load=$(cut -d' ' -f1 /proc/loadavg)
  total=$(wc -l < "$log")
  stats=$(delays "$line" | awk '{ n++; ms += $1; d += $2; if (n == 1 || $2 > mx) mx = $2 }
    END { if (n) printf "%d,%.0f,%.0f,%.0f", n, ms / n, d / n, mx; else printf "0,,," }')
  line=$((total + 1))
  echo "$elapsed,${rss:-},${thr:-},$fds,$cpu,$load,$stats" >> "$csv"
  [ "$elapsed" -lt "$duration" ] || break
done

# EOS (gst-launch -e turns SIGINT into EOS) and wait for the pipeline to drain
kill -INT "$pid" 2>/dev/null || true
waited=0
while kill -0 "$pid" 2>/dev/null && [ $waited -lt 60 ]; do sleep 1; waited=$((waited + 1)); done
if kill -0 "$pid" 2>/dev/null; then
  kill -KILL "$pid" 2>/dev/null || true
  rc=124
else
  rc=0
  wait "$pid" || rc=$?
fi

echo "$rc" > "$out/exit-status"
status=0
summarize || status=1
cat "$summary"
echo "soak: $csv, $summary" >&2
exit $status
