#!/bin/sh
# demo.sh — the README's main command. Installs what is missing and builds build/
# (scripts/setup-debian.sh), then captions a live test video with lfm2vl
# (pipelines/live-captioning.sh): out/live-captioning.mp4 with the captions burnt in and
# out/live-captioning.srt with them as subtitles.
#
#   scripts/demo.sh                         the bundled tiny LFM2-VL trained on test patterns:
#                                           videotestsrc cycles through every pattern it knows
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
if [ "$own_model" = 0 ]; then
  # every videotestsrc pattern the bundled model was trained on, two seconds each
  patterns=$(python3 -c "import sys; sys.path.insert(0, 'tools/train'); import patterns; print(','.join(patterns.PATTERNS))")
  set -- --patterns "$patterns" --pattern-seconds 2 --seconds 30 "$@"
fi
LFM2_BUILD=$PWD/build pipelines/live-captioning.sh --out out "$@"

if [ "$own_model" = 0 ]; then
  cat <<'EOF2'

NOTE: the bundled model (tests/data/trained/lfm2-vl-synthetic-*.gguf) is a tiny LFM2-VL
(about 1 M parameters) trained here by tools/train on synthetic pictures only: GStreamer's
test patterns and coloured shapes (docs/models.md). Its captions are true for those frames and
meaningless for anything else: it shows the whole pipeline working (preprocessing, encoder,
prompt, generation, timestamps, overlay, SRT); it is not a published LFM2 model. For real
pictures download a published LFM2-VL pair, the text model and its mmproj, e.g. from
https://huggingface.co/LiquidAI/LFM2-VL-450M-GGUF (LFM2-VL-450M-Q8_0.gguf +
mmproj-LFM2-VL-450M-Q8_0.gguf), and pass both:

  scripts/demo.sh --model LFM2-VL-450M-Q8_0.gguf --mmproj mmproj-LFM2-VL-450M-Q8_0.gguf
  pipelines/live-captioning.sh --model … --mmproj … --camera --display   # webcam, on screen
EOF2
fi
