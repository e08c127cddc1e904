#!/bin/sh
# live-captioning.sh — caption live video with lfm2vl, burn the captions in, write them as SRT.
#
#   pipelines/live-captioning.sh [--input FILE | --camera [DEVICE]] [--display]
#                                [--model GGUF --mmproj GGUF] [--seconds N] [--out DIR]
#                                [--patterns P1,P2,… [--pattern-seconds N]] …
#
#   video source ─ lfm2vl ─ queue ─ textoverlay ─ x264enc ─ mp4mux ─ DIR/live-captioning.mp4
#                    │ text_src                   (or --display: autovideosink)
#                    └─ tee ─ queue ─ textoverlay.text_sink
#                          └─ queue ─ srtenc ─ DIR/live-captioning.srt
#
# The source is videotestsrc is-live=true (default), a camera (v4l2src), or a media file;
# --patterns cycles videotestsrc patterns (each for --pattern-seconds, in a loop, paced to real
# time by clocksync). The video never waits for the model: lfm2vl captions the newest frame in
# its own thread and skips the frames that come while it is busy. Each caption carries the
# timestamp of the frame it describes; textoverlay shows it from there until the next one.
#
# MODEL/MMPROJ default to the bundled pair in tests/data/trained: a tiny LFM2-VL trained here
# on synthetic pictures (videotestsrc patterns, coloured shapes; see docs/models.md) — it
# describes test patterns and nothing else. Pass a published LFM2-VL pair for real pictures, e.g.
#   --model LFM2-VL-450M-Q8_0.gguf --mmproj mmproj-LFM2-VL-450M-Q8_0.gguf
# Run it from `meson devenv -C build`, or let it find build/plugins (override with LFM2_BUILD).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
data=$(cd "$here/.." && pwd)/tests/data/trained

usage() {
  cat <<EOF
usage: $0 [options]
  --input FILE        caption a media file (default: videotestsrc is-live=true)
  --camera [DEVICE]   caption a V4L2 camera (default device /dev/video0)
  --display           show the video on screen (autovideosink) instead of writing an MP4
  --model GGUF        LFM2-VL text model   (default: the bundled tiny model trained on test patterns)
  --mmproj GGUF       LFM2-VL mmproj       (default: its mmproj)
  --seconds N         how long to run (default 10; a file plays to its end unless given)
  --out DIR           where the MP4 and SRT go (default: out)
  --prompt TEXT       what to ask about every frame (default: lfm2vl's)
  --interval SEC      at least SEC seconds between captioned frames (default 0: back to back)
  --max-tokens N      longest caption in tokens (default 32)
  --threads N         inference threads (default 0: all cores)
  --latency MS        how late captions may be (default: lfm2vl's, 4000)
  --preprocessor-config PATH  the model's preprocessor_config.json / processor_config.json
                      (or its directory): the image settings it was trained with
  --size WxH          test source size (default 640x360); --fps N (default 30)
  --patterns P1,P2,…  test source: cycle these videotestsrc patterns (default: smpte, scrolling)
  --pattern-seconds N each pattern's time on screen with --patterns (default 2)
EOF
}

input=""
camera=""
display=0
model=$data/lfm2-vl-synthetic-text.gguf
mmproj=$data/lfm2-vl-synthetic-mmproj.gguf
seconds=""
outdir=out
prompt=""
interval=0
max_tokens=32
threads=0
latency=""
preprocessor_config=""
size=640x360
fps=30
patterns=""
pattern_seconds=2

need() { [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; usage >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --input) need "$@"; input=$2; shift 2 ;;
    --camera)
      camera=/dev/video0; shift
      case "${1:-}" in /dev/*) camera=$1; shift ;; esac ;;
    --display) display=1; shift ;;
    --model) need "$@"; model=$2; shift 2 ;;
    --mmproj) need "$@"; mmproj=$2; shift 2 ;;
    --seconds) need "$@"; seconds=$2; shift 2 ;;
    --out) need "$@"; outdir=$2; shift 2 ;;
    --prompt) need "$@"; prompt=$2; shift 2 ;;
    --interval) need "$@"; interval=$2; shift 2 ;;
    --max-tokens) need "$@"; max_tokens=$2; shift 2 ;;
    --threads) need "$@"; threads=$2; shift 2 ;;
    --latency) need "$@"; latency=$2; shift 2 ;;
    --preprocessor-config) need "$@"; preprocessor_config=$2; shift 2 ;;
    --size) need "$@"; size=$2; shift 2 ;;
    --fps) need "$@"; fps=$2; shift 2 ;;
    --patterns) need "$@"; patterns=$2; shift 2 ;;
    --pattern-seconds) need "$@"; pattern_seconds=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

# the test source stops by buffer count, a camera after 10 s, a file at its end
[ -n "$seconds" ] || [ -n "$input" ] || seconds=10
for f in "$model" "$mmproj"; do
  [ -f "$f" ] || { echo "$0: no such file: $f" >&2; exit 1; }
done
[ -z "$input" ] || [ -f "$input" ] || { echo "$0: no such file: $input" >&2; exit 1; }
[ -z "$preprocessor_config" ] || [ -e "$preprocessor_config" ] ||
  { echo "$0: no such file: $preprocessor_config" >&2; exit 1; }
[ -z "$camera" ] || [ -e "$camera" ] || { echo "$0: no camera at $camera" >&2; exit 1; }
case "$size" in *x*) ;; *) echo "$0: --size wants WxH" >&2; exit 2 ;; esac
case "$seconds$interval$max_tokens$threads$fps$latency$pattern_seconds" in
  *[!0-9.]*) echo "$0: --seconds, --interval, --max-tokens, --threads, --fps, --latency, --pattern-seconds take numbers" >&2; exit 2 ;;
esac
case "$patterns" in *[!a-z0-9,-]*) echo "$0: --patterns wants videotestsrc pattern names, e.g. smpte,ball,snow" >&2; exit 2 ;; esac

build=${LFM2_BUILD:-$here/../build}
if [ -f "$build/plugins/libgstlfm2.so" ]; then
  GST_PLUGIN_PATH="$build/plugins${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
  export GST_PLUGIN_PATH
fi
gst-inspect-1.0 lfm2vl > /dev/null 2>&1 || {
  echo "$0: the lfm2vl element is not found: build first (meson setup build && ninja -C build)" >&2
  exit 1
}

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
mp4=$outdir/live-captioning.mp4
srt=$outdir/live-captioning.srt
rm -f "$mp4" "$srt"

# The pipeline as gst-launch-1.0 arguments, one property per argument (gst-launch escapes the
# spaces of each argument itself; only backslashes need doubling).
v() { printf '%s' "$1" | sed 's/\\/\\\\/g'; }
w=${size%x*}
h=${size#*x}
if [ -n "$input" ]; then
  set -- filesrc "location=$(v "$input")" ! decodebin ! videoconvert
elif [ -n "$camera" ]; then
  set -- v4l2src "device=$(v "$camera")" ! videoconvert
elif [ -n "$patterns" ]; then
  # one videotestsrc per stretch of --pattern-seconds, joined by concat; timestamp-offset
  # keeps the timestamps running on (concat adjust-base=false), clocksync plays in real time
  plist=$(echo "$patterns" | tr , ' ')
  [ -n "$(echo $plist)" ] || { echo "$0: --patterns is empty" >&2; exit 2; }
  per=$(awk "BEGIN { printf \"%d\", $pattern_seconds * $fps }")
  [ "$per" -gt 0 ] || { echo "$0: --pattern-seconds is shorter than a frame" >&2; exit 2; }
  n=$(awk "BEGIN { printf \"%d\", ($seconds * $fps + $per - 1) / $per }")
  set -- concat name=cycle adjust-base=false ! clocksync name=paced
  k=0
  while [ "$k" -lt "$n" ]; do
    for p in $plist; do
      [ "$k" -lt "$n" ] || break
      set -- "$@" videotestsrc pattern="$p" num-buffers="$per" \
        timestamp-offset="$(awk "BEGIN { printf \"%.0f\", $k * $per * 1000000000 / $fps }")" ! \
        "video/x-raw,width=$w,height=$h,framerate=$fps/1" ! cycle.
      k=$((k + 1))
    done
  done
  set -- "$@" paced.
else
  n=$(awk "BEGIN { printf \"%d\", $seconds * $fps }")
  # a camera's format: left open, videotestsrc would paint its first one, 8 bytes a pixel
  set -- videotestsrc is-live=true pattern=smpte horizontal-speed=2 num-buffers="$n" ! \
    "video/x-raw,format=I420,width=$w,height=$h,framerate=$fps/1"
fi

set -- "$@" ! lfm2vl name=vl "model=$(v "$model")" "mmproj=$(v "$mmproj")" \
  n-threads="$threads" max-tokens="$max_tokens" \
  interval="$(awk "BEGIN { printf \"%.0f\", $interval * 1000000000 }")"
[ -z "$prompt" ] || set -- "$@" "prompt=$(v "$prompt")"
[ -z "$latency" ] || set -- "$@" latency="$latency"
[ -z "$preprocessor_config" ] ||
  set -- "$@" "preprocessor-config=$(v "$preprocessor_config")"

# The queue in front of textoverlay holds the video while the caption of its time is still
# being written (textoverlay waits for the text stream to reach each frame).
set -- "$@" ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! \
  textoverlay name=ov wait-text=true valignment=bottom halignment=center wrap-mode=word \
  shaded-background=true "font-desc=Sans, 14" ! videoconvert
if [ "$display" = 1 ]; then
  set -- "$@" ! autovideosink
else
  set -- "$@" ! x264enc tune=zerolatency speed-preset=veryfast key-int-max=$((fps * 2)) ! \
    mp4mux ! filesink "location=$(v "$mp4")"
fi
# Text queues without limits: a caption waits in textoverlay until the video reaches its end,
# and lfm2vl should not wait for that (captions are a few bytes each).
tq="queue max-size-buffers=0 max-size-bytes=0 max-size-time=0"
set -- "$@" vl.text_src ! tee name=t ! $tq ! ov.text_sink \
  t. ! $tq ! srtenc ! filesink "location=$(v "$srt")"

echo "live-captioning: gst-launch-1.0 -e $*" >&2
set +e
if [ -n "$seconds" ] && { [ -n "$input" ] || [ -n "$camera" ]; }; then
  # a camera has no end, a file may be long: EOS after N seconds (gst-launch -e on SIGINT)
  timeout -s INT "$seconds" gst-launch-1.0 -e -q "$@"
  rc=$?
  [ $rc -eq 124 ] && rc=0
else
  gst-launch-1.0 -e -q "$@"
  rc=$?
fi
set -e
[ $rc -eq 0 ] || { echo "$0: the pipeline failed (exit status $rc)" >&2; exit $rc; }

cues=$(grep -c -- '-->' "$srt" 2>/dev/null || true)
[ "$display" = 1 ] || echo "MP4: $mp4"
echo "SRT: $srt ($cues captions)"
