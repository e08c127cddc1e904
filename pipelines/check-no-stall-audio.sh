#!/bin/sh
# check-no-stall-audio.sh — the live check of lfm2asr: a live source speaking and pausing in
# turn (an espeak clip, then silence) through lfm2asr for 10 minutes; the audio must keep
# flowing at the source's rate while the element transcribes, and each utterance's text
# should come soon after its speech ends.
#
#   pipelines/check-no-stall-audio.sh [--seconds 600] [--model GGUF --mmproj GGUF]
#                                     [--threads N] [--max-tokens N] [--step MS]
#                                     [--buffer-ms 20] [--pause 3] [--clip FILE] [--noise DBFS]
#                                     [--verbose]
#
# Runs lfm2-asrcheck (built in build/pipelines/; see its header):
#
#   appsrc is-live=true ! lfm2asr … ! queue ! fakesink sync=true
#
# and prints the buffers that reached lfm2asr, the longest gap between two, how far behind
# the clock they came, the finals and partials, and the delay of each final after the end of
# its speech (mean, median, 90th percentile, max). Exit status 0 when no gap was longer than
# 3 buffer durations, no buffer came more than 100 ms behind the clock, every buffer came and
# every utterance got its final text. Not part of `meson test` (it takes minutes and measures
# wall-clock time).
#
# Without --model/--mmproj the generated random-weight audio-tiny pair is used. With random
# weights the model never ends its turn, so every final generates max-tokens tokens (default
# 16 here, about what a real transcript of the 4-second clip takes). The pauses are digital
# silence unless --noise adds white noise at that RMS level (e.g. -60: a microphone's floor).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/asr-common.sh"

seconds=600
model=""
mmproj=""
threads=0
max_tokens=16
step=""
buffer_ms=20
pause=3
verbose=""
noise=0
clip=$(cd "$here/../tests/data/audio/wav" && pwd)/speech_4s.wav
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --mmproj) mmproj=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --max-tokens) max_tokens=$2; shift 2 ;;
    --step) step=$2; shift 2 ;;
    --buffer-ms) buffer_ms=$2; shift 2 ;;
    --pause) pause=$2; shift 2 ;;
    --clip) clip=$2; shift 2 ;;
    --verbose) verbose=--verbose; shift ;;
    --noise) noise=$2; shift 2 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; exit 2 ;;
  esac
done

check=$asr_build/pipelines/lfm2-asrcheck
[ -x "$check" ] || { echo "$0: $check not built (ninja -C $asr_build)" >&2; exit 2; }
asr_find_plugin
asr_models audio-tiny "$model" "$mmproj" --type f32 --mmproj-type f32

set -- "model=$asr_model" "mmproj=$asr_mmproj" n-threads="$threads" max-tokens="$max_tokens"
[ -z "$step" ] || set -- "$@" step="$step"
exec "$check" --seconds "$seconds" --clip "$clip" --pause "$pause" --buffer-ms "$buffer_ms" \
  --noise "$noise" $verbose "$@"
