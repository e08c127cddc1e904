#!/bin/sh
# live-transcription.sh — transcribe live audio with lfm2asr; the text on stdout, and with
# --video over the picture.
#
#   pipelines/live-transcription.sh [--demo | --mic | --input FILE] [--video [--out FILE.mp4]]
#                                   [--seconds N] [--model GGUF --mmproj GGUF] [--partials] …
#
#   --mic: autoaudiosrc ─ lfm2asr ─ fakesink                text: lfm2asr/transcript messages
#   --input FILE: filesrc ─ decodebin ─ audioconvert ─ audioresample ─ identity sync=true
#                 ─ lfm2asr ─ fakesink (the file played at its own pace)
#   --demo: --input tests/data/trained/lfm2-audio-demo.wav with the trained tiny ASR pair
#          tests/data/trained/lfm2-audio-asr-{text,mmproj}.gguf — 8 synthesized sentences in
#          voices and wordings the model never heard in training; what they say is printed to
#          stderr at the end. The default when that pair is there (it is bundled: 11.0 % WER
#          on held-out voices, docs/models.md), else --mic
#   --video:  videotestsrc is-live=true (or the file's video) ─ queue ─ textoverlay ─ autovideosink
#             lfm2asr ─ queue ─ textoverlay.text_sink                (--out: x264enc ─ mp4mux ─ FILE)
#
# Every utterance's final text goes to stdout as "[HH:MM:SS.mmm] text" (the time its speech
# started); --partials also prints the partial results of the utterance being spoken, marked
# "…". With a live source (the default, a microphone) lfm2asr never holds the audio back;
# with --input the file is not a live source, so if the model is slower than real time the
# playback waits for it rather than losing text.
#
# Without --model/--mmproj, --mic and --input use the generated random-weight audio-tiny pair
# (gibberish text; see asr-common.sh), --demo the trained tiny pair (it knows 241 words:
# docs/models.md). Run it from `meson devenv -C build`, or let it find build/plugins
# (override with LFM2_BUILD).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/asr-common.sh"

usage() {
  cat <<EOF
usage: $0 [options]
  --demo              the bundled synthesized clip with the trained tiny ASR model of
                      tests/data/trained (the default when that model is there)
  --mic               transcribe what the microphone hears (autoaudiosrc; the default
                      without the trained model)
  --input FILE        transcribe a media file, played in real time
  --video             show the text over video (the file's, or videotestsrc) in a window
  --out FILE.mp4      with --video: write the video to FILE.mp4 instead of a window
  --seconds N         stop after N seconds (default: a file plays to its end, a live
                      source runs until Ctrl-C)
  --partials          also print partial results (marked …)
  --model GGUF        LFM2-Audio backbone   (default: --demo the trained tiny one, else the
                      generated random-weight audio-tiny)
  --mmproj GGUF       its lfm2a mmproj      (default: as --model)
  --threads N         inference threads (default 0: all cores)
  --max-tokens N      longest text of an utterance in tokens (default: lfm2asr's, 256)
  --step MS           audio between partial results (default: lfm2asr's, 1000)
  --max-segment MS    longest utterance (default 10000 here: shorter utterances, earlier text)
  --latency MS        how late the text may be behind its speech (default: lfm2asr's, 5000)
EOF
}

input=""
mic=0
demo=0
video=0
out=""
seconds=""
partials=0
model=""
mmproj=""
threads=0
max_tokens=""
step=""
max_segment=10000
latency=""
need() { [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; usage >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --input) need "$@"; input=$2; shift 2 ;;
    --mic) mic=1; shift ;;
    --demo) demo=1; shift ;;
    --video) video=1; shift ;;
    --out) need "$@"; out=$2; shift 2 ;;
    --seconds) need "$@"; seconds=$2; shift 2 ;;
    --partials) partials=1; shift ;;
    --model) need "$@"; model=$2; shift 2 ;;
    --mmproj) need "$@"; mmproj=$2; shift 2 ;;
    --threads) need "$@"; threads=$2; shift 2 ;;
    --max-tokens) need "$@"; max_tokens=$2; shift 2 ;;
    --step) need "$@"; step=$2; shift 2 ;;
    --max-segment) need "$@"; max_segment=$2; shift 2 ;;
    --latency) need "$@"; latency=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$seconds$threads$max_tokens$step$max_segment$latency" in
  *[!0-9]*) echo "$0: --seconds, --threads, --max-tokens, --step, --max-segment and --latency take whole numbers" >&2; exit 2 ;;
esac
trained="$here/../tests/data/trained"
has_input=0
[ -z "$input" ] || has_input=1
case "$demo$mic$has_input" in
  000) if [ -f "$trained/lfm2-audio-asr-text.gguf" ]; then demo=1; else mic=1; fi ;;
  100 | 010 | 001) ;;
  *) echo "$0: give one of --demo, --mic and --input" >&2; exit 2 ;;
esac
[ -z "$input" ] || [ -f "$input" ] || { echo "$0: no such file: $input" >&2; exit 1; }
[ -z "$out" ] || [ "$video" = 1 ] || { echo "$0: --out needs --video" >&2; exit 2; }
case "$out" in "" | *.mp4) ;; *) echo "$0: --out must end in .mp4" >&2; exit 2 ;; esac

asr_find_plugin
if [ "$demo" = 1 ]; then
  input="$trained/lfm2-audio-demo.wav"
  if [ -z "$model$mmproj" ]; then
    model="$trained/lfm2-audio-asr-text.gguf"
    mmproj="$trained/lfm2-audio-asr-mmproj.gguf"
  fi
  for f in "$input" "$model" "$mmproj"; do
    [ -f "$f" ] || { echo "$0: --demo: no such file: $f (the trained ASR pair of" \
      "tests/data/trained, or pass --model and --mmproj)" >&2; exit 1; }
  done
fi
asr_models audio-tiny "$model" "$mmproj" --type f32 --mmproj-type f32

# the audio into lfm2asr (name asr)
if [ -n "$input" ]; then
  set -- filesrc "location=$(v "$input")" ! decodebin name=d d. ! queue ! audioconvert ! \
    audioresample ! identity sync=true
else
  set -- autoaudiosrc ! queue ! audioconvert ! audioresample
fi
set -- "$@" ! lfm2asr name=asr "model=$(v "$asr_model")" "mmproj=$(v "$asr_mmproj")" \
  n-threads="$threads" max-segment="$max_segment"
[ -z "$max_tokens" ] || set -- "$@" max-tokens="$max_tokens"
[ -z "$step" ] || set -- "$@" step="$step"
[ -z "$latency" ] || set -- "$@" latency="$latency"
[ "$asr_generated" = 0 ] || set -- "$@" temperature=1.0 seed=1 max-tokens="${max_tokens:-24}"

tq="queue max-size-buffers=0 max-size-bytes=0 max-size-time=0"
if [ "$video" = 1 ]; then
  # textoverlay shows each text over the video of its speech: it holds the video (unlimited
  # queue) until the text stream has got there
  set -- "$@" ! $tq ! ov.text_sink
  if [ -n "$input" ] && [ "$demo" = 0 ]; then
    set -- "$@" d. ! queue ! videoconvert
  else
    set -- "$@" videotestsrc is-live=true pattern=smpte ! \
      video/x-raw,width=640,height=360,framerate=30/1
  fi
  set -- "$@" ! $tq ! textoverlay name=ov wait-text=true valignment=bottom halignment=center \
    wrap-mode=word shaded-background=true "font-desc=Sans, 14" ! videoconvert
  if [ -n "$out" ]; then
    set -- "$@" ! x264enc tune=zerolatency speed-preset=veryfast ! mp4mux ! \
      filesink "location=$(v "$out")"
  elif [ -n "$input" ] && [ "$demo" = 0 ]; then
    # a file is paced by the audio; the video follows the text
    set -- "$@" ! autovideosink sync=false
  else
    set -- "$@" ! autovideosink
  fi
else
  set -- "$@" ! fakesink sync=false async=false
fi

# The lfm2asr/transcript messages of gst-launch -m, as text lines (strings come serialized:
# quoted, backslash before specials, octal escapes for non-ASCII bytes).
print_text() {
  LC_ALL=C awk -v partials="$partials" '
    function unescape(s,   o, i, c, n) {
      o = ""
      for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c == "\\" && i < length(s)) {
          n = substr(s, i + 1, 3)
          if (n ~ /^[0-7][0-7][0-7]$/) {
            o = o sprintf("%c", substr(n, 1, 1) * 64 + substr(n, 2, 1) * 8 + substr(n, 3, 1))
            i += 3
          } else {
            o = o substr(s, i + 1, 1)
            i++
          }
        } else {
          o = o c
        }
      }
      return o
    }
    /lfm2asr\/transcript, text=\(string\)/ {
      rest = substr($0, index($0, "text=(string)") + 13)
      if (substr(rest, 1, 1) == "\"") {
        t = ""
        for (i = 2; i <= length(rest); i++) {
          c = substr(rest, i, 1)
          if (c == "\\") { t = t c substr(rest, i + 1, 1); i++; continue }
          if (c == "\"") break
          t = t c
        }
      } else {
        t = rest
        sub(/,.*/, "", t)
      }
      text = unescape(t)
      final = $0 ~ /is-final=\(boolean\)true/
      ms = 0
      if (match($0, /start=\(guint64\)[0-9]+/))
        ms = int(substr($0, RSTART + 15, RLENGTH - 15) / 1000000)
      stamp = sprintf("%02d:%02d:%02d.%03d", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60, ms % 1000)
      if (final && text != "")
        printf "[%s] %s\n", stamp, text
      else if (!final && partials && text != "")
        printf "[%s] … %s\n", stamp, text
      fflush()
    }
    /^ERROR|^WARNING/ { print > "/dev/stderr"; fflush("/dev/stderr") }
    /^Additional debug info/ { getline; print > "/dev/stderr" }'
}

echo "live-transcription: gst-launch-1.0 -e $*" >&2
status=$(mktemp)
trap 'rm -f "$status"' EXIT
{
  if [ -n "$seconds" ]; then
    timeout -s INT "$seconds" stdbuf -oL gst-launch-1.0 -e -m "$@" 2>&1
  else
    stdbuf -oL gst-launch-1.0 -e -m "$@" 2>&1
  fi
  echo $? > "$status"
} | print_text
rc=$(cat "$status")
[ "$rc" = 124 ] && rc=0       # stopped by --seconds
[ "$rc" = 0 ] || { echo "$0: the pipeline failed (exit status $rc)" >&2; exit "$rc"; }
[ -z "$out" ] || echo "MP4: $out" >&2
if [ "$demo" = 1 ]; then
  echo "live-transcription: what the demo clip says (held-out voices and sentences):" >&2
  awk -F '\t' '{ s = $1 * 1000; printf "[%02d:%02d:%02d.%03d] %s\n", s / 3600000, s / 60000 % 60,
                  s / 1000 % 60, s % 1000, $3 }' "$trained/lfm2-audio-demo.txt" >&2
fi
