#!/bin/sh
# check-asr-rss.sh — memory of lfm2asr over a long file: 10 minutes of speech and silence
# (the bundled espeak clips, 4 s and 35 s, between pauses) through
#
#   filesrc ! decodebin ! audioconvert ! audioresample ! lfm2asr … ! fakesink
#
# with the resident set size of the gst-launch process sampled every 0.2 s. Prints the RSS
# at each quarter of the run, its minimum and maximum over the second half, the spread
# ((max − min) / min) and the run's real-time factor. Exit status 0 when the spread is at
# most 5 % (memory flat: nothing grows with the length of the stream).
#
#   pipelines/check-asr-rss.sh [--minutes 10] [--model GGUF --mmproj GGUF] [--threads N]
#                              [--max-tokens N]
#
# Without --model/--mmproj the generated random-weight audio-tiny pair is used (see
# asr-common.sh; with random weights every utterance generates max-tokens tokens, default 16
# here). Not part of `meson test` (it takes minutes).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/asr-common.sh"

minutes=10
model=""
mmproj=""
threads=0
max_tokens=16
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --mmproj) mmproj=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --max-tokens) max_tokens=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; exit 2 ;;
  esac
done

asr_find_plugin
asr_models audio-tiny "$model" "$mmproj" --type f32 --mmproj-type f32
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
wav=$(cd "$here/../tests/data/audio/wav" && pwd)

# speech 4 s, 3 s silence, speech 35 s (two utterances: cut at 30 s), 5 s silence, …
python3 - "$wav/speech_4s.wav" "$wav/speech_long_35s.wav" "$tmp/long.wav" "$minutes" <<'PY'
import sys, wave
def read(p):
    w = wave.open(p); x = w.readframes(w.getnframes()); w.close(); return x
a, b, out, minutes = read(sys.argv[1]), read(sys.argv[2]), sys.argv[3], float(sys.argv[4])
z = b'\0\0'
cycle = a + z * 48000 + b + z * 80000
n = int(minutes * 60 * 16000) * 2
data = (cycle * (n // len(cycle) + 1))[:n]
o = wave.open(out, 'wb'); o.setnchannels(1); o.setsampwidth(2); o.setframerate(16000)
o.writeframes(data); o.close()
PY

set -- filesrc "location=$tmp/long.wav" ! decodebin ! audioconvert ! audioresample ! \
  lfm2asr "model=$(v "$asr_model")" "mmproj=$(v "$asr_mmproj")" n-threads="$threads" \
  max-tokens="$max_tokens" ! fakesink
echo "check-asr-rss: $minutes min of speech and silence through: gst-launch-1.0 $*" >&2
t0=$(date +%s.%N)
gst-launch-1.0 -q "$@" > "$tmp/log" 2>&1 &
pid=$!
: > "$tmp/rss"
while kill -0 "$pid" 2> /dev/null; do
  awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" >> "$tmp/rss" 2> /dev/null || true
  sleep 0.2
done
wait "$pid" || { cat "$tmp/log" >&2; echo "$0: the pipeline failed" >&2; exit 1; }
t1=$(date +%s.%N)

awk -v t0="$t0" -v t1="$t1" -v minutes="$minutes" '
  { rss[NR] = $1 }
  END {
    if (NR < 4) { print "too short a run to sample"; exit 1 }
    lo = 1e18; hi = 0
    # the last sample may fall in the shutdown, when memory is being freed
    for (i = int(NR / 2) + 1; i < NR; i++) { if (rss[i] < lo) lo = rss[i]; if (rss[i] > hi) hi = rss[i] }
    spread = (hi - lo) / lo * 100
    printf "samples=%d\n", NR
    for (q = 1; q <= 4; q++)
      printf "rss-at-%d-percent-mib=%.1f\n", q * 25, rss[int((NR - 1) * q / 4)] / 1024
    printf "rss-second-half-min-mib=%.1f\nrss-second-half-max-mib=%.1f\n", lo / 1024, hi / 1024
    printf "rss-spread-percent=%.2f\nseconds=%.1f\nrtf=%.3f\n", spread, t1 - t0, (t1 - t0) / (minutes * 60)
    printf "result=%s\n", spread <= 5 ? "ok" : "FAILED"
    exit spread <= 5 ? 0 : 1
  }' "$tmp/rss"
