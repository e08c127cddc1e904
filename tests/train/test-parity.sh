#!/bin/sh
# train-parity: tools/train's PyTorch LFM2 backbone and LFM2-VL encoder, exported by
# tools/train/export.py with random weights, against the C engine (tools/train/parity.py:
# logits, image embeddings, token ids). Needs Debian's python3-torch, seen only by
# /usr/bin/python3; without it the test is skipped (exit 77).
set -u
[ -x /usr/bin/python3 ] || { echo "no /usr/bin/python3: skipped"; exit 77; }
exec /usr/bin/python3 "${LFM2_SOURCE_ROOT:?}/tools/train/parity.py" --lfm2 "${LFM2_CLI:?}"
