#!/bin/sh
# trained-transcribe-live: the first 24 bundled held-out clips (both voices alternate; about
# 80 s with the gaps, to keep CI short) joined into one stream (1 s of silence before each) and
# played in real time through lfm2asr (pipelines/live-transcription.sh --input: identity
# sync=true), with the bundled trained LFM2-Audio ASR pair: each final text is given to the
# clip its timestamp falls in, and the stream's word error rate may be at most 2 points above
# the same 24 clips' WER through `lfm2 transcribe` (tools/train/asr_stream.py) — segmentation,
# windows and timestamps neither cut nor repeat words.
set -eu
SRC=${LFM2_SOURCE_ROOT:?}
D=${LFM2_TEST_DATA:?}/trained
exec python3 "$SRC/tools/train/asr_stream.py" --lfm2 "${LFM2_BUILD:?}/tools/lfm2" -t 2 --max-extra 2 \
  --first 24 -m "$D/lfm2-audio-asr-text.gguf" --mmproj "$D/lfm2-audio-asr-mmproj.gguf" "$D/lfm2-audio-heldout"
