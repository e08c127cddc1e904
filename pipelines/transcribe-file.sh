#!/bin/sh
# transcribe-file.sh — subtitles for any media file with lfm2asr.
#
#   pipelines/transcribe-file.sh [options] IN [OUT.srt | OUT.vtt]
#
#   filesrc location=IN ! decodebin caps=audio/x-raw ! audioconvert ! audioresample !
#       lfm2asr step=0 … ! srtenc | webvttenc ! filesink location=OUT   (no OUT: SRT on stdout)
#
# IN is anything GStreamer decodes (WAV, FLAC, MP3, Ogg, the soundtrack of an MP4/MKV …).
# lfm2asr cuts the audio into utterances by voice activity and transcribes each one; every
# utterance is one cue with the time of its speech. The file is read as fast as the model
# goes (a non-live source waits for it: nothing is dropped).
#
# Without --model/--mmproj the generated random-weight audio-tiny pair is used (gibberish
# text; see asr-common.sh). Run it from `meson devenv -C build`, or let it find build/plugins
# (override with LFM2_BUILD).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/asr-common.sh"

usage() {
  cat <<EOF
usage: $0 [options] IN [OUT.srt | OUT.vtt]
  --model GGUF        LFM2-Audio backbone   (default: generated random-weight audio-tiny)
  --mmproj GGUF       its lfm2a mmproj      (default: generated random-weight audio-tiny)
  --threads N         inference threads (default 0: all cores)
  --max-tokens N      longest text of an utterance in tokens (default: lfm2asr's, 256)
  --max-segment MS    longest utterance (default: lfm2asr's, 30000)
  --frontend MODE     official (default) | llamacpp
EOF
}

model=""
mmproj=""
threads=0
max_tokens=""
max_segment=""
frontend=official
need() { [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; usage >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --model) need "$@"; model=$2; shift 2 ;;
    --mmproj) need "$@"; mmproj=$2; shift 2 ;;
    --threads) need "$@"; threads=$2; shift 2 ;;
    --max-tokens) need "$@"; max_tokens=$2; shift 2 ;;
    --max-segment) need "$@"; max_segment=$2; shift 2 ;;
    --frontend) need "$@"; frontend=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "$0: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] && [ $# -le 2 ] || { usage >&2; exit 2; }
in=$1
out=${2:-}
[ -f "$in" ] || { echo "$0: no such file: $in" >&2; exit 1; }
case "$threads$max_tokens$max_segment" in
  *[!0-9]*) echo "$0: --threads, --max-tokens and --max-segment take whole numbers" >&2; exit 2 ;;
esac
case "$out" in
  "" | *.srt) enc=srtenc ;;
  *.vtt) enc=webvttenc ;;
  *) echo "$0: OUT must end in .srt or .vtt" >&2; exit 2 ;;
esac

asr_find_plugin
asr_models audio-tiny "$model" "$mmproj" --type f32 --mmproj-type f32

set -- filesrc "location=$(v "$in")" ! decodebin caps=audio/x-raw ! audioconvert ! \
  audioresample ! lfm2asr "model=$(v "$asr_model")" "mmproj=$(v "$asr_mmproj")" \
  n-threads="$threads" frontend="$frontend" step=0
[ -z "$max_tokens" ] || set -- "$@" max-tokens="$max_tokens"
[ -z "$max_segment" ] || set -- "$@" max-segment="$max_segment"
[ "$asr_generated" = 0 ] || set -- "$@" temperature=1.0 seed=1 max-tokens="${max_tokens:-24}"
if [ -n "$out" ]; then
  set -- "$@" ! $enc ! filesink "location=$(v "$out")"
else
  set -- "$@" ! $enc ! fdsink fd=1
fi

echo "transcribe-file: gst-launch-1.0 $*" >&2
gst-launch-1.0 -q "$@" || { echo "$0: the pipeline failed" >&2; exit 1; }
if [ -n "$out" ]; then
  cues=$(grep -c -- '-->' "$out" 2>/dev/null || true)
  echo "$out: $cues cues" >&2
fi
