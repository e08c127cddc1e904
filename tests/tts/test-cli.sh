#!/bin/sh
# test-cli — `lfm2 audio-codes | audio-embed | vocode | speak` and `lfm2 mkmodel --config audio-*`:
# the fixture's arrays through the commands, the stream/chunk equivalence, speaking on a
# generated set, errors (exit status 1 and a message naming the problem).
set -u
CLI=${LFM2_CLI:?}
D=${LFM2_TEST_DATA:?}/tts
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if ! "$@"; then echo "FAIL: $*" >&2; fail=1; fi; }
# fails_with MESSAGE COMMAND…: exit status 1 and MESSAGE on stderr
fails_with() {
  msg=$1; shift
  "$@" > "$T/out" 2> "$T/err"
  st=$?
  if [ $st -ne 1 ] || ! grep -qF -- "$msg" "$T/err"; then
    echo "FAIL: '$*' exit $st, wanted 1 and '$msg':" >&2; cat "$T/err" >&2; fail=1
  fi
}
maxdiff() {  # maxdiff A.f32 B.f32 TOL
python3 - "$@" <<'PY'
import struct, sys
a = open(sys.argv[1], 'rb').read(); b = open(sys.argv[2], 'rb').read()
if len(a) != len(b): sys.exit("size %d != %d" % (len(a), len(b)))
x = struct.unpack('<%df' % (len(a) // 4), a); y = struct.unpack('<%df' % (len(b) // 4), b)
d = max(abs(p - q) for p, q in zip(x, y))
print("max |d| %.3g" % d)
sys.exit(0 if d <= float(sys.argv[3]) else 1)
PY
}
V=$D/vocoder-tiny-dev.gguf
K=$D/tokenizer-tiny-dev.gguf

# the fixture through the commands (tolerances: ref.json, tier f32)
check "$CLI" audio-codes --vocoder "$V" --hidden "$D/hidden.f32" -o "$T/codes.i32" -t 2
check cmp "$T/codes.i32" "$D/codes_greedy.i32"
check "$CLI" audio-embed --vocoder "$V" --codes "$D/codes_fed.i32" -o "$T/feed.f32"
check maxdiff "$T/feed.f32" "$D/feed_embd.f32" 1e-5
check "$CLI" vocode --vocoder "$V" --tokenizer "$K" --codes "$D/codes_long.i32" -o "$T/out.wav" --raw "$T/out.f32" -t 2
check maxdiff "$T/out.f32" "$D/wave_long.f32" 1e-4
check test "$(wc -c < "$T/out.wav")" -eq 153644
check test "$(wc -c < "$T/out.f32")" -eq $((40 * 1920 * 4))
# frame by frame (default) and 40 frames per push: the same samples
check "$CLI" vocode --vocoder "$V" --tokenizer "$K" --codes "$D/codes_long.i32" -o "$T/c.wav" --raw "$T/c.f32" --chunk 40
check cmp "$T/out.f32" "$T/c.f32"
check cmp "$T/out.wav" "$T/c.wav"
# sampled codes are reproducible with a seed
check "$CLI" audio-codes --vocoder "$V" --hidden "$D/hidden.f32" -o "$T/s1.i32" --temp 0.8 --top-k 64 --seed 3
check "$CLI" audio-codes --vocoder "$V" --hidden "$D/hidden.f32" -o "$T/s2.i32" --temp 0.8 --top-k 64 --seed 3
check cmp "$T/s1.i32" "$T/s2.i32"

# errors
fails_with "codebook" "$CLI" vocode --vocoder "$V" --tokenizer "$K" --codes "$D/codes_fed.i32" -o "$T/x.wav"
head -c 1000 "$D/codes_long.i32" > "$T/odd.i32"
fails_with "not a whole number" "$CLI" audio-codes --vocoder "$V" --hidden "$T/odd.i32" -o "$T/x.i32"
fails_with "whole number of frames" "$CLI" vocode --vocoder "$V" --tokenizer "$K" --codes "$T/odd.i32" -o "$T/x.wav"
fails_with "pass it as the tokenizer" "$CLI" vocode --vocoder "$K" --tokenizer "$K" --codes "$D/codes_long.i32" -o "$T/x.wav"
fails_with "pass it as the vocoder" "$CLI" vocode --vocoder "$V" --tokenizer "$V" --codes "$D/codes_long.i32" -o "$T/x.wav"
fails_with "nonexistent.gguf" "$CLI" audio-embed --vocoder "$T/nonexistent.gguf" --codes "$D/codes_fed.i32" -o "$T/x.f32"
fails_with "need --vocoder" "$CLI" vocode --codes "$D/codes_long.i32"
fails_with "unknown option" "$CLI" speak --bogus x

# a generated LFM2-Audio set (random weights)
check "$CLI" mkmodel --config audio-tiny --type q8_0 -o "$T/m.gguf" --vocoder-out "$T/v.gguf" --tokenizer-out "$T/t.gguf"
check "$CLI" mkmodel --config audio-tiny --type q4_0 -o "$T/m4.gguf" --vocoder-out "$T/v8.gguf" --vocoder-type q8_0 --tokenizer-out "$T/t4.gguf" --tokenizer-type q4_0
fails_with "audio-* config" "$CLI" mkmodel --config tiny --type q8_0 -o "$T/x.gguf" --vocoder-out "$T/x.gguf"
fails_with "vocoder converter" "$CLI" mkmodel --config audio-tiny --type q8_0 -o "$T/x.gguf" --vocoder-out "$T/x.gguf" --vocoder-type q4_k
S="--vocoder $T/v.gguf --tokenizer $T/t.gguf -m $T/m.gguf"
check sh -c "'$CLI' speak $S -o '$T/s.wav' --raw '$T/s.f32' --codes '$T/s.i32' 'Hello there.' 2> '$T/s.err'"
check grep -q "first audio" "$T/s.err"
check grep -q "real-time factor" "$T/s.err"
# the WAV holds the float samples; the codes vocode to them
n=$(( $(wc -c < "$T/s.f32") / 4 ))
check test "$n" -gt 0
check test "$(wc -c < "$T/s.wav")" -eq $((44 + 2 * n))
check test "$n" -eq $(( $(wc -c < "$T/s.i32") / 32 * 1920 ))
check "$CLI" vocode --vocoder "$T/v.gguf" --tokenizer "$T/t.gguf" --codes "$T/s.i32" -o "$T/r.wav" --raw "$T/r.f32"
check cmp "$T/s.f32" "$T/r.f32"
# the same again: deterministic; a voice and a seed change the frames
check "$CLI" speak $S --raw "$T/s2.f32" 'Hello there.'
check cmp "$T/s.f32" "$T/s2.f32"
check "$CLI" speak $S --voice uk-male -n 12 --codes "$T/uk.i32" 'Hello there.'
check "$CLI" speak $S --seed 9 -n 12 --codes "$T/s9.i32" 'Hello there.'
check sh -c "! cmp -s '$T/s9.i32' '$T/uk.i32'"
# other files of the set, quantized vocoder and tokenizer
check "$CLI" speak -m "$T/m4.gguf" --vocoder "$T/v8.gguf" --tokenizer "$T/t4.gguf" -n 10 -o "$T/q.wav" 'Hi.'
# interleaved mode, greedy audio, a file, stdin, non-Latin text
check "$CLI" speak $S --interleaved -n 30 -o "$T/i.wav" 'How are you?'
check "$CLI" speak $S --temp 0 -n 8 -o "$T/g.wav" 'Greedy.'
printf 'Привет, мир! 你好世界 🎉' > "$T/utf8.txt"
check "$CLI" speak $S -n 8 -f "$T/utf8.txt" -o "$T/u.wav"
check sh -c "printf 'From stdin.' | '$CLI' speak $S -n 8 -f - -o '$T/stdin.wav'"
# empty text: no audio, no error, an empty WAV
check sh -c "'$CLI' speak $S -o '$T/e.wav' '' 2> '$T/e.err'"
check grep -q "empty" "$T/e.err"
check test "$(wc -c < "$T/e.wav")" -eq 44
# 10,000 characters: spoken in a context that holds them, a clear error in one that does not
python3 -c "import sys; sys.stdout.write(('The quick brown fox jumps over the lazy dog. ' * 300)[:10000])" > "$T/long.txt"
check "$CLI" speak $S -c 16384 -n 4 -f "$T/long.txt" -o "$T/l.wav"
fails_with "does not fit" "$CLI" speak $S -c 512 -n 4 -f "$T/long.txt"
fails_with "us-male" "$CLI" speak $S --voice martian 'x'
fails_with "the vocoder takes hidden states of 64" "$CLI" speak -m "$LFM2_TEST_DATA/text/tiny-q8_0/lfm2-tiny-q8_0.gguf" --vocoder "$V" --tokenizer "$K" 'x'
# the generated audio-tiny backbone is 128 wide (the ASR fixture's width), the TTS fixture's pair 64
fails_with "the vocoder takes hidden states of 64" "$CLI" speak -m "$T/m.gguf" --vocoder "$V" --tokenizer "$K" 'Hi.'

# lfm2 lists the commands
check sh -c "'$CLI' --help | grep -q 'speak'"
check sh -c "'$CLI' --help | grep -q 'vocode'"
exit $fail
