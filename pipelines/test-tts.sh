#!/bin/sh
# Runs tts.sh on the generated random-weight audio-tiny set (made in a temporary cache): a text
# gives a 24 kHz mono 16-bit WAV equal, byte for byte, to `lfm2 speak` on the same text (greedy),
# and the same WAV again on a second run; a text file longer than a turn is spoken in several
# turns back to back; an empty text gives an empty WAV and no error; a missing vocoder fails
# naming it; a bad voice is refused.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export LFM2_CACHE="$tmp/cache"
lfm2=${LFM2_BUILD:-$here/../build}/tools/lfm2
set_dir=$tmp/cache/audio-tiny-speech

# WAV FRAMES: a 24 kHz mono 16-bit WAV of FRAMES × 1920 samples (any when FRAMES is "any", > 0)
check_wav() {
  python3 - "$1" "$2" <<'PY'
import sys, wave
w = wave.open(sys.argv[1])
assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2), w.getparams()
n = w.getnframes()
if sys.argv[2] == 'any':
    assert n > 0 and n % 1920 == 0, n
else:
    assert n == int(sys.argv[2]) * 1920, (n, sys.argv[2])
PY
}

run() {  # LOG ARGS…
  log=$1
  shift
  "$here/tts.sh" "$@" > "$log" 2>&1 || { cat "$log"; exit 1; }
}

run "$tmp/log" --temperature 0 --threads 2 "Hello there." "$tmp/a.wav"
grep -q "RANDOM weights" "$tmp/log" || { echo "no note on the random weights"; cat "$tmp/log"; exit 1; }
grep -q "^WAV: $tmp/a.wav" "$tmp/log" || { echo "the WAV is not named"; cat "$tmp/log"; exit 1; }
grep -Eq "^tts: [0-9.]+ s of speech \(1 turn\), first audio after [0-9]+ ms, real-time factor [0-9.]+" \
  "$tmp/log" || { echo "no first-audio / real-time factor line"; cat "$tmp/log"; exit 1; }
check_wav "$tmp/a.wav" any || { echo "bad WAV"; exit 1; }
# the library's own run of the same turn, written by `lfm2 speak`: the same file
"$lfm2" speak -m "$set_dir/model.gguf" --vocoder "$set_dir/vocoder.gguf" \
  --tokenizer "$set_dir/tokenizer.gguf" --temp 0 -t 2 -o "$tmp/speak.wav" "Hello there." \
  2> "$tmp/speak.log" || { cat "$tmp/speak.log"; exit 1; }
cmp "$tmp/a.wav" "$tmp/speak.wav" || { echo "tts.sh and lfm2 speak differ"; exit 1; }
run "$tmp/log" --temperature 0 --threads 2 "Hello there." "$tmp/b.wav"
cmp "$tmp/a.wav" "$tmp/b.wav" || { echo "two greedy runs differ"; exit 1; }

# a file of 1,000 bytes: 3 turns (at most 400 bytes each, cut at sentence ends), 2 frames each
python3 -c "print('This is one of many sentences. ' * 33, end='')" > "$tmp/long.txt"
run "$tmp/log" --max-tokens 3 --voice uk-female "$tmp/long.txt" "$tmp/c.wav"
grep -q "(3 turns)" "$tmp/log" || { echo "not spoken in 3 turns"; cat "$tmp/log"; exit 1; }
check_wav "$tmp/c.wav" 6 || { echo "bad WAV of the long text"; exit 1; }

# empty text: no speech, no error
run "$tmp/log" "" "$tmp/d.wav"
grep -q "no speech" "$tmp/log" || { echo "empty text not reported"; cat "$tmp/log"; exit 1; }
python3 -c "import wave, sys; assert wave.open(sys.argv[1]).getnframes() == 0" "$tmp/d.wav"

# errors: a missing vocoder is named, a bad voice refused
if "$here/tts.sh" --model "$set_dir/model.gguf" --vocoder "$tmp/no-such-vocoder.gguf" \
    --tokenizer "$set_dir/tokenizer.gguf" "Hi." "$tmp/e.wav" > "$tmp/log" 2>&1; then
  echo "a missing vocoder should fail"; exit 1
fi
grep -q "no-such-vocoder.gguf" "$tmp/log" || { echo "error does not name the vocoder:"; cat "$tmp/log"; exit 1; }
if "$here/tts.sh" --voice robot "Hi." "$tmp/f.wav" > "$tmp/log" 2>&1; then
  echo "a bad voice should fail"; exit 1
fi
grep -q "us-male, us-female" "$tmp/log" || { echo "bad voice not explained:"; cat "$tmp/log"; exit 1; }
echo "ok"
