#!/bin/sh
# trained-lfm2vl: renders a held-out set (tools/train/heldout.py, its own seed) and runs
# check-trained-lfm2vl ($1) on it: the trained model through the lfm2vl element.
set -u
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
python3 "${LFM2_SOURCE_ROOT:?}/tools/train/heldout.py" --out "$T" --seed 2002 --patterns 20 --scenes 20 || exit 1
LFM2_TRAINED_SET=$T "$1"
