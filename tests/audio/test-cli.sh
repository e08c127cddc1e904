#!/bin/sh
# test-cli — `lfm2 embed-audio` and `lfm2 transcribe`: embeddings and mel through the CLI against
# llama.cpp's (tests/data/audio), any input format, the benchmark mode, the model generator's
# LFM2-Audio pairs (F32/F16/Q8_0 mmproj), the transcript formats (text/srt/vtt/json) with their
# timestamps, several files, silence, and the errors.
set -u
CLI=${LFM2_CLI:?}
D=${LFM2_TEST_DATA:?}/audio
TXT=${LFM2_TEST_DATA}/text/tiny-f32/lfm2-tiny-f32.gguf
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if ! "$@"; then echo "FAIL: $*" >&2; fail=1; fi; }

MM=$D/lfm2a-tiny-mmproj-f32.gguf
MM16=$D/lfm2a-tiny-mmproj-f16.gguf

# cmp_npy OUT.f32 REF.npy TOL [transpose]: raw float32 against a float32 .npy, max |d| <= TOL
cmp_npy() {
python3 - "$@" <<'PY'
import struct, sys, ast
out, ref, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
b = open(ref, 'rb').read()
hl = struct.unpack('<H', b[8:10])[0]
hdr = ast.literal_eval(b[10:10 + hl].decode())
n = 1
for s in hdr['shape']: n *= s
r = struct.unpack('<%df' % n, b[10 + hl:10 + hl + 4 * n])
a = open(out, 'rb').read()
if len(a) != 4 * n: sys.exit("%s: %d bytes, expected %d" % (out, len(a), 4 * n))
x = struct.unpack('<%df' % n, a)
d = max(abs(p - q) for p, q in zip(x, r))
print("%s: max |d| %.3g (tol %g)" % (out.split('/')[-1], d, tol))
sys.exit(0 if d <= tol else 1)
PY
}

# write WAV files with python's wave module: resampled/stereo copies and a mix with silences
python3 - "$D/wav/speech_4s.wav" "$T" <<'PY'
import sys, wave, struct, math
src, out = sys.argv[1], sys.argv[2]
w = wave.open(src); n = w.getnframes(); x = struct.unpack('<%dh' % n, w.readframes(n)); w.close()
def write(path, rate, ch, frames):
    o = wave.open(path, 'wb'); o.setnchannels(ch); o.setsampwidth(2); o.setframerate(rate)
    o.writeframes(struct.pack('<%dh' % len(frames), *frames)); o.close()
# 44.1 kHz stereo (linear interpolation is enough: the length is what the test checks)
m = int(n * 44100 / 16000)
st = []
for i in range(m):
    p = i * 16000 / 44100; k = int(p); f = p - k
    v = int(x[k] * (1 - f) + (x[k + 1] if k + 1 < n else 0) * f)
    st += [v, v]
write(out + '/st44.wav', 44100, 2, st)
# 2 s silence, speech, 3 s silence, speech, 1 s silence
S = 16000
write(out + '/mix.wav', 16000, 1, [0] * (2 * S) + list(x) + [0] * (3 * S) + list(x) + [0] * S)
write(out + '/silence.wav', 16000, 1, [0] * (3 * S))
write(out + '/empty.wav', 16000, 1, [])
PY

# ---- embed-audio ------------------------------------------------------------------------------
for c in sine440_1s chirp_2.5s noise_3s silence_0.5s speech_4s speech_long_35s; do
  check sh -c "'$CLI' embed-audio --mmproj '$MM' --audio '$D/wav/$c.wav' -o '$T/$c.f32' --mel '$T/$c.mel' --frontend llamacpp -t 2 > '$T/$c.n' 2> '$T/$c.err'"
  check test "$(cat "$T/$c.n")" = "$(python3 -c "import json; print(json.load(open('$D/ref/$c/meta.json'))['n_audio_tokens'])")"
  check cmp_npy "$T/$c.f32" "$D/ref/$c/audio_embd.npy" 3e-3
  check cmp_npy "$T/$c.mel" "$D/ref/$c/mel.npy" 2e-3
done
check grep -q "401 frames → 51 tokens × 128 (llamacpp front-end)" "$T/speech_4s.err"
check sh -c "'$CLI' embed-audio --mmproj '$MM16' --audio '$D/wav/speech_4s.wav' -o '$T/f16.f32' --frontend llamacpp > /dev/null 2>&1"
check cmp_npy "$T/f16.f32" "$D/ref/speech_4s/audio_embd_f16mmproj.npy" 5e-3
# official (default): same count, different numbers (NeMo's front-end, F32 conv.0)
check sh -c "'$CLI' embed-audio --mmproj '$MM' --audio '$D/wav/speech_4s.wav' -o '$T/off.f32' > '$T/off.n' 2> '$T/off.err'"
check test "$(cat "$T/off.n")" = 51
check grep -q "(official front-end)" "$T/off.err"
check sh -c "! cmp -s '$T/off.f32' '$T/speech_4s.f32'"
# 44.1 kHz stereo in: resampled, 4 s → 51 tokens, near the 16 kHz result
check sh -c "'$CLI' embed-audio --mmproj '$MM' --audio '$T/st44.wav' -o '$T/st.f32' --frontend llamacpp > '$T/st.n' 2> '$T/st.err'"
check test "$(cat "$T/st.n")" = 51
check grep -q "44100 Hz, 2 ch" "$T/st.err"
# benchmark mode
check sh -c "'$CLI' embed-audio --mmproj '$MM' --audio '$D/wav/speech_4s.wav' --bench -r 2 --json > '$T/b.json' 2>/dev/null"
check python3 -c "import json; d = json.load(open('$T/b.json')); assert d['tokens'] == 51 and d['ms_per_audio_second'] > 0"

# ---- the generator's LFM2-Audio pairs ----------------------------------------------------------
check "$CLI" mkmodel --config audio-tiny --type q8_0 -o "$T/a.gguf" --mmproj-out "$T/m32.gguf" --mmproj-type f32
check "$CLI" mkmodel --config audio-tiny --type q4_0 -o "$T/b.gguf" --mmproj-out "$T/m16.gguf" --mmproj-type f16
check "$CLI" mkmodel --config audio-tiny --type f32 -o "$T/c.gguf" --mmproj-out "$T/m8.gguf" --mmproj-type q8_0
for m in m32 m16 m8; do
  check sh -c "'$CLI' embed-audio --mmproj '$T/$m.gguf' -m '$T/a.gguf' --audio '$D/wav/speech_4s.wav' -o '$T/$m.f32' --frontend llamacpp > '$T/$m.n' 2> '$T/$m.err'"
  check test "$(cat "$T/$m.n")" = 51
done
check grep -q "(F32)" "$T/m32.err"
check grep -q "(F16)" "$T/m16.err"
check grep -q "(Q8_0)" "$T/m8.err"
check sh -c "'$CLI' mkmodel --config audio-tiny --type q8_0 -o '$T/x.gguf' --mmproj-out '$T/x.gguf.mm' --mmproj-type q4_0 2>&1 | grep -q 'f32, f16 or q8_0'"
# the generator is deterministic: it rewrites the Q8_0 mmproj tests/data/audio/mkmodel-q8_0 holds
# (run through llama.cpp's mtmd for test-parity) byte for byte
check "$CLI" mkmodel --config audio-tiny --type f32 --seed 0 -o "$T/q.gguf" --mmproj-out "$T/q8.gguf" --mmproj-type q8_0
check cmp -s "$T/q8.gguf" "$D/mkmodel-q8_0/mmproj-audio-tiny-q8_0.gguf"

# ---- transcribe ---------------------------------------------------------------------------------
# sampling with a seed gives visible (random-model) text; greedy on these weights emits newlines
TR="'$CLI' transcribe -m '$TXT' --mmproj '$MM' -n 8 --temp 1 --seed 1"
check sh -c "$TR '$T/mix.wav' > '$T/t.txt' 2> '$T/t.err'"
check test "$(wc -l < "$T/t.txt")" -eq 2
check grep -q "2 utterances" "$T/t.err"
check grep -q "RTF" "$T/t.err"
check sh -c "$TR --format srt '$T/mix.wav' > '$T/t.srt' 2>/dev/null"
check sh -c "$TR --format vtt '$T/mix.wav' > '$T/t.vtt' 2>/dev/null"
check sh -c "$TR --format json '$T/mix.wav' > '$T/t.json' 2>/dev/null"
check python3 - "$T" <<'PY'
import json, re, sys
t = sys.argv[1]
srt = open(t + '/t.srt').read()
cues = re.findall(r'(\d+)\n(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)\n(.+)\n\n', srt)
assert len(cues) == 2, srt
assert [c[0] for c in cues] == ['1', '2']
start = [int(c[3]) + int(c[4]) / 1000 for c in cues]
end = [int(c[7]) + int(c[8]) / 1000 for c in cues]
# speech at 2–6 s and 9–13 s; utterances padded by 0.2 s (+ the VAD's 32 ms window)
assert 1.7 <= start[0] <= 2.1 and 5.8 <= end[0] <= 6.3, (start, end)
assert 8.7 <= start[1] <= 9.1 and 12.8 <= end[1] <= 13.3, (start, end)
vtt = open(t + '/t.vtt').read()
assert vtt.startswith('WEBVTT\n\n') and len(re.findall(r'\d\d:\d\d:\d\d\.\d\d\d --> ', vtt)) == 2, vtt
j = json.loads(open(t + '/t.json').read())
assert len(j['segments']) == 2 and abs(j['duration'] - 14.0) < 1e-6 and j['rtf'] > 0, j
assert abs(j['segments'][0]['start'] - start[0]) < 0.002 and j['segments'][1]['text'] == cues[1][9].strip(), j
txt = open(t + '/t.txt').read().splitlines()
assert txt == [c[9].strip() for c in cues], (txt, cues)
assert j['text'] == ' '.join(txt)
PY
# greedy is the default and deterministic
check sh -c "'$CLI' transcribe -m '$TXT' --mmproj '$MM' -n 4 --format json '$D/wav/speech_4s.wav' > '$T/g1.json' 2>/dev/null"
check sh -c "'$CLI' transcribe -m '$TXT' --mmproj '$MM' -n 4 --format json '$D/wav/speech_4s.wav' > '$T/g2.json' 2>/dev/null"
check python3 -c "import json; a, b = (json.load(open('$T/g%d.json' % i)) for i in (1, 2)); assert a['segments'] == b['segments'] and len(a['segments']) == 1"
# long input is cut into utterances, not truncated; several files; silence gives nothing
check sh -c "$TR --format json --max-segment 10 '$D/wav/speech_long_35s.wav' '$T/silence.wav' > '$T/l.json' 2> '$T/l.err'"
check python3 - "$T/l.json" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 2, lines
a, b = json.loads(lines[0]), json.loads(lines[1])
s = a['segments']
assert len(s) >= 4 and all(x['end'] - x['start'] <= 10.0 + 1e-3 for x in s), s
assert s[0]['start'] == 0 and s[-1]['end'] > 34.5 and all(s[i]['start'] >= s[i - 1]['end'] for i in range(1, len(s))), s
assert b['segments'] == [] and b['text'] == '', b
PY
check sh -c "$TR '$D/wav/speech_4s.wav' '$T/silence.wav' > '$T/two.txt' 2>/dev/null"
check grep -q "^==> .*speech_4s.wav <==" "$T/two.txt"
check grep -q "^==> .*silence.wav <==" "$T/two.txt"
# the model generator's pair end to end, llama.cpp front-end too
check sh -c "'$CLI' transcribe -m '$T/a.gguf' --mmproj '$T/m16.gguf' -n 4 --frontend llamacpp '$D/wav/speech_4s.wav' > /dev/null 2>&1"

# ---- errors: non-zero exit, one clear line naming the problem ----------------------------------
check sh -c "! '$CLI' embed-audio --mmproj '$T/missing.gguf' --audio '$D/wav/speech_4s.wav' -o '$T/x' 2> '$T/e1' && grep -q 'missing.gguf' '$T/e1'"
check sh -c "! '$CLI' embed-audio --mmproj '$TXT' --audio '$D/wav/speech_4s.wav' -o '$T/x' 2> '$T/e2' && grep -q \"expected 'clip'\" '$T/e2'"
printf 'not audio' > "$T/bad.wav"
check sh -c "! '$CLI' embed-audio --mmproj '$MM' --audio '$T/bad.wav' -o '$T/x' 2> '$T/e3' && grep -q 'bad.wav' '$T/e3'"
check sh -c "test \$(wc -l < '$T/e3') -eq 1"   # no FFmpeg chatter
check sh -c "! '$CLI' embed-audio --mmproj '$MM' --audio '$T/empty.wav' -o '$T/x' 2> '$T/e4' && grep -q 'no audio samples' '$T/e4'"
check sh -c "! '$CLI' embed-audio --mmproj '$MM' --audio '$D/wav/speech_4s.wav' -o '$T/x' --frontend bogus 2>/dev/null"
check sh -c "! '$CLI' embed-audio --mmproj '$MM' --audio '$D/wav/speech_4s.wav' 2>/dev/null"
check sh -c "! '$CLI' transcribe --mmproj '$MM' '$D/wav/speech_4s.wav' 2>/dev/null"
check sh -c "! '$CLI' transcribe -m '$TXT' --mmproj '$MM' --format xml '$D/wav/speech_4s.wav' 2> '$T/e5' && grep -q 'xml' '$T/e5'"
check sh -c "! '$CLI' transcribe -m '${LFM2_TEST_DATA}/text/small-f32/lfm2-small-f32.gguf' --mmproj '$MM' '$D/wav/speech_4s.wav' 2> '$T/e6' && grep -q 'n_embd 256' '$T/e6'"
check sh -c "! '$CLI' transcribe -m '$TXT' --mmproj '$MM' '$T/bad.wav' 2> '$T/e7' && grep -q 'bad.wav' '$T/e7'"
check sh -c "'$CLI' --help | grep -q 'embed-audio' && '$CLI' --help | grep -q 'transcribe'"
exit $fail
