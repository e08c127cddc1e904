#!/bin/sh
# train-audio-parity: tools/train's PyTorch LFM2-Audio speech input (official log-mel,
# FastConformer encoder, adapter), exported by tools/train/audio_export.py with random weights,
# against the C engine (tools/train/audio_parity.py: the mmproj layout of lfm2 mkmodel, the
# mel, the embeddings from the engine's mel and end to end, F32 and F16). Needs Debian's
# python3-torch, seen only by /usr/bin/python3; without it the test is skipped (exit 77).
set -u
[ -x /usr/bin/python3 ] || { echo "no /usr/bin/python3: skipped"; exit 77; }
exec /usr/bin/python3 "${LFM2_SOURCE_ROOT:?}/tools/train/audio_parity.py" --lfm2 "${LFM2_CLI:?}" \
    --data "${LFM2_TEST_DATA:?}"
