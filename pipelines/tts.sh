#!/bin/sh
# tts.sh — text to speech with lfm2tts.
#
#   pipelines/tts.sh [options] TEXT|FILE [OUT.wav]
#
#   filesrc (the text) ─ lfm2tts ─ wavenc ─ OUT.wav                    (24 kHz mono, 16-bit)
#                                └ audioconvert ─ audioresample ─ autoaudiosink   (no OUT.wav)
#
# The argument is spoken as it is, or, when it names an existing file, that file's text. The
# whole text is one utterance: lfm2tts speaks a long one in turns of at most 400 bytes cut at
# sentence ends, one after the other. Prints the time to the first audio and the real-time
# factor.
#
# Without model options the models are the generated audio-tiny set (made once in a cache
# directory), which has RANDOM weights: the speech is noise. Pass the published
# LFM2.5-Audio-1.5B-GGUF files for real speech (--model, --vocoder, --tokenizer).
# Run it from `meson devenv -C build`, or let it find build/plugins (override with LFM2_BUILD).
set -eu

. "$(cd "$(dirname "$0")" && pwd)/speech-common.sh"

usage() {
  cat <<EOF
usage: $0 [options] TEXT|FILE [OUT.wav]
  --model GGUF        LFM2-Audio backbone   (default: generated, random weights)
  --vocoder GGUF      its vocoder-*.gguf    (default: generated)
  --tokenizer GGUF    its tokenizer-*.gguf  (default: generated)
  --voice V           us-male | us-female | uk-male | uk-female (default: lfm2tts's, us-female)
  --temperature X     audio sampling temperature (default: lfm2tts's, 0.8; 0 = greedy)
  --seed S            sampling seed (default 0)
  --max-tokens N      most text tokens + frames per turn (default 0: until the model ends)
  --threads N         inference threads (default 0: all cores)
EOF
}

speech_model=""
speech_mmproj=""
speech_vocoder=""
speech_tokenizer=""
voice=""
temperature=""
seed=0
max_tokens=0
threads=0
need() { [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; usage >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --model) need "$@"; speech_model=$2; shift 2 ;;
    --vocoder) need "$@"; speech_vocoder=$2; shift 2 ;;
    --tokenizer) need "$@"; speech_tokenizer=$2; shift 2 ;;
    --voice) need "$@"; voice=$2; shift 2 ;;
    --temperature) need "$@"; temperature=$2; shift 2 ;;
    --seed) need "$@"; seed=$2; shift 2 ;;
    --max-tokens) need "$@"; max_tokens=$2; shift 2 ;;
    --threads) need "$@"; threads=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    -*) echo "$0: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] && [ $# -le 2 ] || { usage >&2; exit 2; }
case "$seed$max_tokens$threads" in
  *[!0-9]*) echo "$0: --seed, --max-tokens and --threads take whole numbers" >&2; exit 2 ;;
esac
case "$voice" in
  ""|us-male|us-female|uk-male|uk-female) ;;
  *) echo "$0: --voice: '$voice' is not one of us-male, us-female, uk-male, uk-female" >&2; exit 2 ;;
esac
out=${2:-}

speech_find_plugin lfm2tts
speech_models "model vocoder tokenizer"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -f "$1" ]; then
  text=$1
else
  text=$tmp/text.txt
  printf '%s' "$1" > "$text"
fi
# the whole text in one buffer: one utterance
size=$(wc -c < "$text")
if [ "$size" -eq 0 ]; then
  # nothing flows: write the empty 24 kHz mono 16-bit WAV here
  # shellcheck disable=SC2059
  [ -z "$out" ] || printf 'RIFF\044\0\0\0WAVEfmt \020\0\0\0\001\0\001\0\300\135\0\0\200\273\0\0\002\0\020\0data\0\0\0\0' > "$out"
  echo "tts: the text is empty: no speech"
  [ -z "$out" ] || echo "WAV: $out"
  exit 0
fi

set -- filesrc "location=$(v "$text")" blocksize="$size" ! text/x-raw,format=utf8 ! \
  lfm2tts "model=$(v "$speech_model")" "vocoder=$(v "$speech_vocoder")" \
  "tokenizer=$(v "$speech_tokenizer")" seed="$seed" max-tokens="$max_tokens" n-threads="$threads"
[ -z "$voice" ] || set -- "$@" voice="$voice"
[ -z "$temperature" ] || set -- "$@" temperature="$temperature"
if [ -n "$out" ]; then
  rm -f "$out"
  # PCM16 made by lfm2tts (truncation, as llama.cpp and `lfm2 speak`)
  set -- "$@" ! audio/x-raw,format=S16LE ! wavenc ! filesink "location=$(v "$out")"
else
  set -- "$@" ! audioconvert ! audioresample ! autoaudiosink
fi

echo "tts: gst-launch-1.0 $*" >&2
set +e
gst-launch-1.0 -m "$@" > "$tmp/log" 2>&1
rc=$?
set -e
if [ $rc -ne 0 ]; then
  grep -iE "error|warning" "$tmp/log" >&2 || cat "$tmp/log" >&2
  echo "$0: the pipeline failed (exit status $rc)" >&2
  exit $rc
fi
# the lfm2tts/utterance message: the time to the first audio and the real-time factor
grep -q "lfm2tts/utterance" "$tmp/log" || { echo "tts: the text is empty: no speech"; }
sed -n 's/.*lfm2tts\/utterance.*duration=(guint64)\([0-9]*\).*first-audio-ms=(double)\([0-9.e+-]*\).*rtf=(double)\([0-9.e+-]*\).*turns=(int)\([0-9]*\).*/\1 \2 \3 \4/p' \
  "$tmp/log" | while read -r dur first rtf turns; do
    awk -v d="$dur" -v f="$first" -v r="$rtf" -v t="$turns" 'BEGIN {
      printf "tts: %.2f s of speech (%d turn%s), first audio after %.0f ms, real-time factor %.3f\n",
        d / 1e9, t, t == 1 ? "" : "s", f, r }'
  done
[ -z "$out" ] || echo "WAV: $out"
