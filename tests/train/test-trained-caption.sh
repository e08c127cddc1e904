#!/bin/sh
# trained-caption: the bundled trained LFM2-VL (tests/data/trained) through `lfm2 caption`
# (greedy) on a held-out set rendered now (tools/train/heldout.py: new videotestsrc frames and
# shape scenes at new sizes, some tiled): at least 90 % of the captions equal the truth.
set -eu
SRC=${LFM2_SOURCE_ROOT:?}
D=${LFM2_TEST_DATA:?}/trained
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
python3 "$SRC/tools/train/heldout.py" --out "$T" --seed 2001
python3 "$SRC/tools/train/evaluate.py" --set "$T" --lfm2 "${LFM2_CLI:?}" \
  --model "$D/lfm2-vl-synthetic-text.gguf" --mmproj "$D/lfm2-vl-synthetic-mmproj.gguf" --min-accuracy 0.9
