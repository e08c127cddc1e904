#!/bin/sh
# Runs speech-to-speech.sh on the generated random-weight audio-tiny set (made in a temporary
# cache): a WAV of speech, silence and speech becomes a 24 kHz mono 16-bit WAV, both with the
# cascade (lfm2asr ! lfm2text ! lfm2tts) and with --native (lfm2s2s): one reply per utterance,
# what was heard and said printed with each reply's first audio and real-time factor; the
# native WAV's samples equal `lfm2 s2s` on the same file and prompt; `lfm2 s2s --whole`, on
# silence, without --mmproj; bad options and files fail with a message.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=$(cd "$here/../tests/data/audio/wav" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export LFM2_CACHE="$tmp/cache"
lfm2=${LFM2_BUILD:-$here/../build}/tools/lfm2
set_dir=$tmp/cache/audio-tiny-speech

# speech (4 s), 1.5 s of silence, speech, 0.5 s of silence
python3 - "$data/speech_4s.wav" "$tmp/mix.wav" <<'PY'
import sys, wave
w = wave.open(sys.argv[1]); x = w.readframes(w.getnframes()); w.close()
z = b'\0\0'
o = wave.open(sys.argv[2], 'wb'); o.setnchannels(1); o.setsampwidth(2); o.setframerate(16000)
o.writeframes(x + z * 24000 + x + z * 8000); o.close()
PY

# WAV: 24 kHz mono 16-bit, a whole number of 80 ms frames, some speech
check_wav() {
  python3 - "$1" <<'PY'
import sys, wave
w = wave.open(sys.argv[1])
assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2), w.getparams()
n = w.getnframes()
assert n > 0 and n % 1920 == 0, n
PY
}

run() {  # LOG ARGS…
  log=$1
  shift
  "$here/speech-to-speech.sh" "$@" > "$log" 2>&1 || { cat "$log"; exit 1; }
}

# --native: two utterances, two replies (heard + reply lines), the WAV
run "$tmp/log" --native --input "$tmp/mix.wav" --output "$tmp/native.wav" --threads 2
grep -q "RANDOM weights" "$tmp/log" || { echo "no note on the random weights"; cat "$tmp/log"; exit 1; }
[ "$(grep -c '^heard \[' "$tmp/log")" -eq 2 ] || { echo "not two utterances heard"; cat "$tmp/log"; exit 1; }
[ "$(grep -Ec '^reply \[[0-9.]+ s, [0-9.]+ s\]: .*first audio after [0-9]+ ms, real-time factor [0-9.]+' \
  "$tmp/log")" -eq 2 ] || { echo "not two replies"; cat "$tmp/log"; exit 1; }
grep -q "^WAV: $tmp/native.wav" "$tmp/log" || { echo "the WAV is not named"; cat "$tmp/log"; exit 1; }
check_wav "$tmp/native.wav" || { echo "bad native WAV"; exit 1; }
# the same replies as the command-line program's (one model, the same VAD and prompt)
"$lfm2" s2s -m "$set_dir/model.gguf" --mmproj "$set_dir/mmproj.gguf" --vocoder "$set_dir/vocoder.gguf" \
  --tokenizer "$set_dir/tokenizer.gguf" -p "Translate to French:" -n 50 -t 2 "$tmp/mix.wav" \
  -o "$tmp/cli.wav" > /dev/null 2> "$tmp/cli.log" || { cat "$tmp/cli.log"; exit 1; }
grep -q "2 utterances" "$tmp/cli.log" || { echo "lfm2 s2s did not hear two utterances"; cat "$tmp/cli.log"; exit 1; }
python3 - "$tmp/native.wav" "$tmp/cli.wav" <<'PY' || { echo "speech-to-speech.sh --native and lfm2 s2s differ"; exit 1; }
import sys, wave
a, b = (wave.open(p) for p in sys.argv[1:])
assert a.readframes(a.getnframes()) == b.readframes(b.getnframes())
PY

# lfm2 s2s: --whole answers the file as one utterance; silence gives an empty WAV, no error;
# a missing option is named
"$lfm2" s2s -m "$set_dir/model.gguf" --mmproj "$set_dir/mmproj.gguf" --vocoder "$set_dir/vocoder.gguf" \
  --tokenizer "$set_dir/tokenizer.gguf" --whole -n 13 -t 2 "$tmp/mix.wav" -o "$tmp/whole.wav" \
  --text "$tmp/whole.txt" > /dev/null 2> "$tmp/cli.log" || { cat "$tmp/cli.log"; exit 1; }
grep -q "1 utterance," "$tmp/cli.log" || { echo "--whole: not one utterance"; cat "$tmp/cli.log"; exit 1; }
grep -Eq "first audio [0-9.]+ ms .* real-time factor [0-9.]+" "$tmp/cli.log" ||
  { echo "lfm2 s2s: no first audio / RTF"; cat "$tmp/cli.log"; exit 1; }
[ "$(wc -l < "$tmp/whole.txt")" -eq 1 ] || { echo "--text: not one line per reply"; exit 1; }
python3 -c "
import wave, sys
w = wave.open(sys.argv[1])
assert w.getnframes() == 7 * 1920, w.getnframes()   # 6 text tokens and 7 frames (-n 13)
" "$tmp/whole.wav" || { echo "--whole -n 13: not 7 frames"; exit 1; }
python3 -c "
import wave, sys
o = wave.open(sys.argv[1], 'wb'); o.setnchannels(1); o.setsampwidth(2); o.setframerate(16000)
o.writeframes(b'\0\0' * 32000); o.close()" "$tmp/silence.wav"
"$lfm2" s2s -m "$set_dir/model.gguf" --mmproj "$set_dir/mmproj.gguf" --vocoder "$set_dir/vocoder.gguf" \
  --tokenizer "$set_dir/tokenizer.gguf" -t 2 "$tmp/silence.wav" -o "$tmp/silent.wav" > /dev/null \
  2> "$tmp/cli.log" || { cat "$tmp/cli.log"; exit 1; }
grep -q "no speech found" "$tmp/cli.log" || { echo "silence not reported"; cat "$tmp/cli.log"; exit 1; }
python3 -c "import wave, sys; assert wave.open(sys.argv[1]).getnframes() == 0" "$tmp/silent.wav"
if "$lfm2" s2s -m "$set_dir/model.gguf" --vocoder "$set_dir/vocoder.gguf" \
    --tokenizer "$set_dir/tokenizer.gguf" "$tmp/mix.wav" -o "$tmp/x.wav" > "$tmp/cli.log" 2>&1; then
  echo "lfm2 s2s without --mmproj should fail"; exit 1
fi
grep -q "need -m MODEL, --mmproj MMPROJ" "$tmp/cli.log" || { echo "missing --mmproj not named"; cat "$tmp/cli.log"; exit 1; }

# the cascade: each utterance heard, translated, spoken
run "$tmp/log" --input "$tmp/mix.wav" --output "$tmp/cascade.wav" --language German --threads 2
[ "$(grep -c '^heard \[' "$tmp/log")" -eq 2 ] || { echo "cascade: not two utterances heard"; cat "$tmp/log"; exit 1; }
grep -q '^translation: ' "$tmp/log" || { echo "cascade: no translation"; cat "$tmp/log"; exit 1; }
grep -Eq '^speech \[[0-9.]+ s, [0-9.]+ s\]: first audio after [0-9]+ ms, real-time factor [0-9.]+' "$tmp/log" ||
  { echo "cascade: no speech"; cat "$tmp/log"; exit 1; }
check_wav "$tmp/cascade.wav" || { echo "bad cascade WAV"; exit 1; }

# errors
if "$here/speech-to-speech.sh" --input "$tmp/no-such.wav" --output "$tmp/x.wav" > "$tmp/log" 2>&1; then
  echo "a missing input should fail"; exit 1
fi
grep -q "no-such.wav" "$tmp/log" || { echo "missing input not named"; cat "$tmp/log"; exit 1; }
if "$here/speech-to-speech.sh" --input "$tmp/mix.wav" --mic > "$tmp/log" 2>&1; then
  echo "--input with --mic should fail"; exit 1
fi
if "$here/speech-to-speech.sh" --native --input "$tmp/mix.wav" --output "$tmp/x.wav" \
    --model "$set_dir/model.gguf" --mmproj "$set_dir/mmproj.gguf" --vocoder "$tmp/no-vocoder.gguf" \
    --tokenizer "$set_dir/tokenizer.gguf" > "$tmp/log" 2>&1; then
  echo "a missing vocoder should fail"; exit 1
fi
grep -q "no-vocoder.gguf" "$tmp/log" || { echo "missing vocoder not named"; cat "$tmp/log"; exit 1; }
echo "ok"
