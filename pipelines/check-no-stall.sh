#!/bin/sh
# check-no-stall.sh — the no-stall check of issue 5: a live source through lfm2vl for 60 s,
# captioning all the time, must keep the video flowing at the source rate.
#
#   pipelines/check-no-stall.sh [--seconds N] [--model GGUF --mmproj GGUF] [--overlay]
#                               [--size WxH] [--fps N] [--format FMT] [--threads N]
#                               [--max-tokens N] [--caption-budget MS] [--inference-nice N]
#
# Runs (through lfm2-flowcheck, which is gst-launch plus measurements)
#
#   videotestsrc is-live=true ! video/x-raw,… ! lfm2vl name=vl … !
#       queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! fakesink sync=true
#       vl.text_src ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 !
#       fakesink sync=true
#
# (--overlay: textoverlay burns the captions in before the video sink, as live-captioning.sh
# does) and prints the frames that left lfm2vl, the longest gap between two of them, how far
# behind the clock they left, the captions and the skipped frames. Exit status 0 when no gap
# was longer than 3 frame durations, no frame left more than 100 ms behind the clock, ≥ 95 %
# of the frames came and captions were produced (issue 15's "Done when").
# --format is the raw video format the source paints (default I420, what cameras and decoders
# deliver; without one, the caps filter lets videotestsrc pick its own first format, ABGR64_LE:
# 8 bytes a pixel, which at 1080p is the source painting and the pipeline buffering 16 MB frames).
# --caption-budget and --inference-nice set lfm2vl's properties (default: the element's,
# 2000 ms and 10; `--caption-budget 0 --inference-nice 0` is the behaviour before them).
# Not part of `meson test` (it takes a minute and measures wall-clock time).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
data=$(cd "$here/../tests/data/vision" && pwd)
model=$data/lfm2-vl-tiny-text-q4_0.gguf
mmproj=$data/lfm2-vl-tiny-mmproj-f32.gguf
seconds=60
size=640x360
fps=30
format=I420
threads=0
max_tokens=32
overlay=0
extra=""

while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --mmproj) mmproj=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --fps) fps=$2; shift 2 ;;
    --format) format=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --max-tokens) max_tokens=$2; shift 2 ;;
    --caption-budget) extra="$extra caption-budget=$2"; shift 2 ;;
    --inference-nice) extra="$extra inference-nice=$2"; shift 2 ;;
    --overlay) overlay=1; shift ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; exit 2 ;;
  esac
done

build=${LFM2_BUILD:-$here/../build}
check=$build/pipelines/lfm2-flowcheck
[ -x "$check" ] || { echo "$0: $check not built (ninja -C $build)" >&2; exit 2; }
GST_PLUGIN_PATH="$build/plugins${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
export GST_PLUGIN_PATH

v() { printf '%s' "$1" | sed 's/\\/\\\\/g'; }
set -- videotestsrc is-live=true pattern=smpte horizontal-speed=2 ! \
  "video/x-raw,format=$format,width=${size%x*},height=${size#*x},framerate=$fps/1" ! \
  lfm2vl name=vl "model=$(v "$model")" "mmproj=$(v "$mmproj")" n-threads="$threads" \
  max-tokens="$max_tokens" $extra ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0
if [ "$overlay" = 1 ]; then
  set -- "$@" ! textoverlay name=ov valignment=bottom shaded-background=true ! \
    fakesink sync=true vl.text_src ! queue max-size-buffers=0 max-size-bytes=0 \
    max-size-time=0 ! ov.text_sink
else
  set -- "$@" ! fakesink sync=true vl.text_src ! queue max-size-buffers=0 max-size-bytes=0 \
    max-size-time=0 ! fakesink sync=true
fi

echo "check-no-stall: $seconds s of: gst-launch-1.0 $*" >&2
exec "$check" --seconds "$seconds" --element vl --max-gap-frames 3 --max-behind-ms 100 "$@"
