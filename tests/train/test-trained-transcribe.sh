#!/bin/sh
# trained-transcribe: the bundled trained LFM2-Audio ASR pair (tests/data/trained) through
# `lfm2 transcribe` (the C engine: VAD, official log-mel, FastConformer, backbone, greedy) on the
# bundled held-out clips (voices and sentences never trained on): the word error rate against
# their truth transcripts must be at most 10 %. Standard-library Python only (no torch).
set -eu
SRC=${LFM2_SOURCE_ROOT:?}
D=${LFM2_TEST_DATA:?}/trained
exec python3 "$SRC/tools/train/asr_eval.py" --lfm2 "${LFM2_CLI:?}" -t 2 --max-wer 10 \
  -m "$D/lfm2-audio-asr-text.gguf" --mmproj "$D/lfm2-audio-asr-mmproj.gguf" "$D/lfm2-audio-heldout"
