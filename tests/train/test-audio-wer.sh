#!/bin/sh
# train-audio-wer: the trained tiny LFM2-Audio ASR pair (tests/data/trained/lfm2-audio-asr-*)
# transcribes the bundled held-out clips (voices and sentences never seen in training, noise at
# 10-30 dB SNR; tests/data/trained/lfm2-audio-heldout/truth.tsv) through `lfm2 transcribe`, and
# the word error rate against the truth stays within the limit (tools/train/asr_eval.py,
# standard-library Python only).
set -u
[ -x /usr/bin/python3 ] || { echo "no /usr/bin/python3: skipped"; exit 77; }
T="${LFM2_TEST_DATA:?}/trained"
exec /usr/bin/python3 "${LFM2_SOURCE_ROOT:?}/tools/train/asr_eval.py" --lfm2 "${LFM2_CLI:?}" \
    -m "$T/lfm2-audio-asr-text.gguf" --mmproj "$T/lfm2-audio-asr-mmproj.gguf" \
    --max-wer "${LFM2_ASR_MAX_WER:-10}" "$T/lfm2-audio-heldout"
