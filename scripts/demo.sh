#!/bin/sh
# demo.sh — the README's main command. Installs what is missing and builds build/
# (scripts/setup-debian.sh), then captions a live test video with lfm2vl
# (pipelines/live-captioning.sh): out/live-captioning.mp4 with the captions burnt in and
# out/live-captioning.srt with them as subtitles.
#
#   scripts/demo.sh                         the bundled tiny LFM2-VL pair (random weights)
#   scripts/demo.sh --model M.gguf --mmproj MM.gguf [--camera | --input FILE | --display] …
#
# Options go to pipelines/live-captioning.sh (see --help there).
set -eu
cd "$(dirname "$0")/.."

scripts/setup-debian.sh build

own_model=0
for a in "$@"; do
  [ "$a" = "--model" ] && own_model=1
done
LFM2_BUILD=$PWD/build pipelines/live-captioning.sh --out out "$@"

if [ "$own_model" = 0 ]; then
  cat <<'EOF2'

NOTE: the bundled model (tests/data/vision/lfm2-vl-tiny-*.gguf) has RANDOM weights, so the
captions above are gibberish by design: the run shows the pipeline working (timestamps, frame
skipping, overlay, SRT), not language. For real captions download a published LFM2-VL pair,
the text model and its mmproj, e.g. from https://huggingface.co/LiquidAI/LFM2-VL-450M-GGUF
(LFM2-VL-450M-Q8_0.gguf + mmproj-LFM2-VL-450M-Q8_0.gguf), and pass both:

  scripts/demo.sh --model LFM2-VL-450M-Q8_0.gguf --mmproj mmproj-LFM2-VL-450M-Q8_0.gguf
  pipelines/live-captioning.sh --model … --mmproj … --camera --display   # webcam, on screen
EOF2
fi
