#!/bin/sh
# speech-to-speech.sh — spoken translation: speech in, speech in another language out.
#
#   pipelines/speech-to-speech.sh [--input IN | --mic] [--output OUT.wav | --play] [--native]
#                                 [--language LANG] [model options] …
#
# Cascade (default), three models' worth of work on one LFM2-Audio backbone:
#   source ─ audioconvert ─ audioresample ─ lfm2asr (speech → text, per utterance)
#     ─ queue ─ lfm2text prompt-template="Translate to LANG: {text}" ─ queue
#     ─ lfm2tts (text → 24 kHz speech, at the utterance's time or after the previous one)
#     ─ OUT.wav (PCM16) or the speakers
# --native: the interleaved single-model mode, one element:
#   source ─ audioconvert ─ audioresample ─ lfm2s2s prompt="Translate to LANG:" ─ OUT / speakers
#
# The source is a file (--input: anything GStreamer decodes; read as fast as the models go)
# or the microphone (--mic, the default: autoaudiosrc, live; stop with Ctrl-C or --seconds).
# What each side said is printed as it comes (lfm2asr/lfm2text/lfm2tts or lfm2s2s messages),
# with the time to the first audio and the real-time factor of every reply.
#
# Without model options the models are the generated audio-tiny set (made once in a cache
# directory) with RANDOM weights: the pipeline runs end to end, but what it hears and says is
# noise; the generated backbone is then sampled (temperature 1, seed 1) so that text comes
# out at all, and replies are cut at 4 s. Pass the published LFM2.5-Audio-1.5B-GGUF files for
# real translation (--model, --mmproj, --vocoder, --tokenizer).
# Run it from `meson devenv -C build`, or let it find build/plugins (override with LFM2_BUILD).
set -eu

. "$(cd "$(dirname "$0")" && pwd)/speech-common.sh"

usage() {
  cat <<EOF
usage: $0 [options]
  --input FILE        speech from a file (anything GStreamer decodes)
  --mic               speech from the microphone (autoaudiosrc; the default)
  --output OUT.wav    the translated speech as a 24 kHz mono 16-bit WAV
  --play              the translated speech on the speakers (the default)
  --native            LFM2.5-Audio's interleaved mode in one element (lfm2s2s) instead of
                      lfm2asr ! lfm2text ! lfm2tts
  --language LANG     the language to translate to (default French)
  --model GGUF        LFM2-Audio backbone          (default: generated, random weights)
  --mmproj GGUF       its mmproj (speech in)       (default: generated)
  --vocoder GGUF      its vocoder (speech out)     (default: generated)
  --tokenizer GGUF    its tokenizer (speech out)   (default: generated)
  --voice V           lfm2tts voice: us-male | us-female | uk-male | uk-female
  --max-tokens N      longest reply in text tokens + 80 ms frames (0: until the model ends;
                      default 0, or 50 with generated models)
  --threads N         inference threads per element (default 0: all cores)
  --seconds N         stop after N seconds (the microphone; default: until Ctrl-C)
EOF
}

input=""
mic=0
output=""
play=0
native=0
language=French
speech_model=""
speech_mmproj=""
speech_vocoder=""
speech_tokenizer=""
voice=""
max_tokens=""
threads=0
seconds=""
need() { [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; usage >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --input) need "$@"; input=$2; shift 2 ;;
    --mic) mic=1; shift ;;
    --output) need "$@"; output=$2; shift 2 ;;
    --play) play=1; shift ;;
    --native) native=1; shift ;;
    --language) need "$@"; language=$2; shift 2 ;;
    --model) need "$@"; speech_model=$2; shift 2 ;;
    --mmproj) need "$@"; speech_mmproj=$2; shift 2 ;;
    --vocoder) need "$@"; speech_vocoder=$2; shift 2 ;;
    --tokenizer) need "$@"; speech_tokenizer=$2; shift 2 ;;
    --voice) need "$@"; voice=$2; shift 2 ;;
    --max-tokens) need "$@"; max_tokens=$2; shift 2 ;;
    --threads) need "$@"; threads=$2; shift 2 ;;
    --seconds) need "$@"; seconds=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
[ -z "$input" ] || [ "$mic" = 0 ] || { echo "$0: --input or --mic, not both" >&2; exit 2; }
[ -z "$output" ] || [ "$play" = 0 ] || { echo "$0: --output or --play, not both" >&2; exit 2; }
[ -z "$input" ] || [ -f "$input" ] || { echo "$0: no such file: $input" >&2; exit 1; }
case "$max_tokens$threads$seconds" in
  *[!0-9]*) echo "$0: --max-tokens, --threads and --seconds take whole numbers" >&2; exit 2 ;;
esac
case "$voice" in
  ""|us-male|us-female|uk-male|uk-female) ;;
  *) echo "$0: --voice: '$voice' is not one of us-male, us-female, uk-male, uk-female" >&2; exit 2 ;;
esac

if [ "$native" = 1 ]; then
  speech_find_plugin lfm2s2s
else
  speech_find_plugin lfm2asr lfm2text lfm2tts
fi
speech_models "model mmproj vocoder tokenizer"
if [ "$speech_generated" = 1 ]; then
  max_tokens=${max_tokens:-50}
  sampled="temperature=1.0 seed=1"
else
  max_tokens=${max_tokens:-0}
  sampled=""
fi

m=$(v "$speech_model")
if [ -n "$input" ]; then
  set -- filesrc "location=$(v "$input")" ! decodebin caps=audio/x-raw
else
  set -- autoaudiosrc
fi
set -- "$@" ! audioconvert ! audioresample
if [ "$native" = 1 ]; then
  set -- "$@" ! lfm2s2s "model=$m" "mmproj=$(v "$speech_mmproj")" \
    "vocoder=$(v "$speech_vocoder")" "tokenizer=$(v "$speech_tokenizer")" \
    "prompt=Translate to $(v "$language"):" n-threads="$threads" max-tokens="$max_tokens"
else
  # lfm2asr: every utterance's final text; lfm2text translates it (its timestamps kept);
  # lfm2tts speaks it from the utterance's time on, or after the previous reply
  # shellcheck disable=SC2086
  set -- "$@" ! lfm2asr "model=$m" "mmproj=$(v "$speech_mmproj")" n-threads="$threads" \
    step=0 $sampled ! queue ! \
    lfm2text "model=$m" "prompt-template=Translate to $(v "$language"): {text}" \
    n-threads="$threads" max-tokens=64 $sampled ! queue ! \
    lfm2tts "model=$m" "vocoder=$(v "$speech_vocoder")" "tokenizer=$(v "$speech_tokenizer")" \
    n-threads="$threads" max-tokens="$max_tokens"
  [ -z "$voice" ] || set -- "$@" voice="$voice"
fi
if [ -n "$output" ]; then
  rm -f "$output"
  # PCM16 made by the element (truncation, as llama.cpp)
  set -- "$@" ! audio/x-raw,format=S16LE ! wavenc ! filesink "location=$(v "$output")"
elif [ -n "$input" ]; then
  # a file is read as fast as the models go: play the replies as they come
  set -- "$@" ! audioconvert ! audioresample ! autoaudiosink sync=false
else
  set -- "$@" ! audioconvert ! audioresample ! autoaudiosink
fi

echo "speech-to-speech: gst-launch-1.0 -e $*" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# What each side said, from the elements' messages (GstStructure strings: quoted with
# backslash escapes, octal for bytes outside ASCII).
report() {
  awk '
    function field(line, name, type,    i, v, out, k, c, esc) {
      i = index(line, " " name "=(" type ")")
      if (!i) return ""
      v = substr(line, i + length(name) + length(type) + 4)
      if (substr(v, 1, 1) != "\"") { sub(/[,;].*$/, "", v); return v }
      out = ""
      for (k = 2; k <= length(v); k++) {
        c = substr(v, k, 1)
        if (c == "\"") break
        if (c == "\\") {
          k++
          c = substr(v, k, 1)
          if (c ~ /[0-7]/) {
            c = sprintf("%c", (c + 0) * 64 + substr(v, k + 1, 1) * 8 + substr(v, k + 2, 1))
            k += 2
          }
        }
        out = out c
      }
      return out
    }
    function secs(ns) { return sprintf("%.2f", ns / 1e9) }
    /lfm2asr\/transcript/ && field($0, "is-final", "boolean") == "true" {
      printf "heard [%s s]: %s\n", secs(field($0, "start", "guint64")), field($0, "text", "string"); fflush() }
    /lfm2text\/result/ {
      printf "translation: %s\n", field($0, "text", "string"); fflush() }
    /lfm2tts\/utterance/ {
      printf "speech [%s s, %s s]: first audio after %.0f ms, real-time factor %.3f\n",
        secs(field($0, "start", "guint64")), secs(field($0, "duration", "guint64")),
        field($0, "first-audio-ms", "double"), field($0, "rtf", "double"); fflush() }
    /lfm2s2s\/transcript/ {
      printf "heard [%s s]: %s\n", secs(field($0, "start", "guint64")), field($0, "text", "string"); fflush() }
    /lfm2s2s\/reply/ {
      printf "reply [%s s, %s s]: %s (first audio after %.0f ms, real-time factor %.3f; waited %.0f ms)\n",
        secs(field($0, "start", "guint64")), secs(field($0, "duration", "guint64")),
        field($0, "text", "string"), field($0, "first-audio-ms", "double"),
        field($0, "rtf", "double"), field($0, "queued-ms", "double"); fflush() }
    /ERROR|WARNING/ { print > "/dev/stderr"; fflush() }'
}

{
  if [ -n "$seconds" ]; then
    timeout -s INT "$seconds" gst-launch-1.0 -e -m "$@" 2>&1
    rc=$?
    [ $rc -ne 124 ] || rc=0
  else
    gst-launch-1.0 -e -m "$@" 2>&1
    rc=$?
  fi
  echo "$rc" > "$tmp/rc"
} | report
rc=$(cat "$tmp/rc")
[ "$rc" -eq 0 ] || { echo "$0: the pipeline failed (exit status $rc)" >&2; exit "$rc"; }
[ -z "$output" ] || echo "WAV: $output"
