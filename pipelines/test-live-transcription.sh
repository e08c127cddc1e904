#!/bin/sh
# Runs transcribe-file.sh and live-transcription.sh on the generated random-weight audio-tiny
# pair (made in a temporary cache): a WAV of speech, silence and speech gives two SRT / VTT
# cues at the times of the speech; so does the soundtrack of an MKV with video; played as a
# live source it gives two text lines on stdout with those start times; with --video the text
# is burnt into a playable MP4; a missing mmproj fails naming it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=$(cd "$here/../tests/data/audio/wav" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export LFM2_CACHE="$tmp/cache"

# 1 s silence, speech (4 s), 1.5 s silence, speech, 0.5 s silence
python3 - "$data/speech_4s.wav" "$tmp/mix.wav" <<'PY'
import sys, wave
w = wave.open(sys.argv[1]); x = w.readframes(w.getnframes()); w.close()
z = b'\0\0'
o = wave.open(sys.argv[2], 'wb'); o.setnchannels(1); o.setsampwidth(2); o.setframerate(16000)
o.writeframes(z * 16000 + x + z * 24000 + x + z * 8000); o.close()
PY

# FILE KIND [SUFFIX]: two cues, numbered (SRT), the speech at 1–5 s and 6.5–10.5 s (utterances
# padded by 0.2 s, but not into the digital silence around the clip, whose first 11 ms are
# zeros too), one line of text each
check_cues() {
  python3 - "$@" <<'PY'
import re, sys
path, kind = sys.argv[1], sys.argv[2]
s = open(path, encoding='utf-8').read()
sep = ',' if kind == 'srt' else '.'
if kind == 'vtt':
    assert s.startswith('WEBVTT'), s[:40]
t = r'(\d\d):(\d\d):(\d\d)' + re.escape(sep) + r'(\d\d\d)'
cues = re.findall(r'(?:(\d+)\n)?' + t + ' --> ' + t + r'\n([^\n]+)\n', s)
assert len(cues) == 2, s
secs = lambda c, i: int(c[i]) * 3600 + int(c[i + 1]) * 60 + int(c[i + 2]) + int(c[i + 3]) / 1000
for k, (c, lo, hi) in enumerate(zip(cues, (1.0, 6.5), (5.0, 10.5))):
    if kind == 'srt':
        assert c[0] == str(k + 1), c
    start, end = secs(c, 1), secs(c, 5)
    assert lo - 0.35 <= start <= lo + 0.02 and hi - 0.02 <= end <= hi + 0.35, (start, end, s)
    assert c[9].strip(), c
PY
}

# a WAV to SRT and VTT
"$here/transcribe-file.sh" "$tmp/mix.wav" "$tmp/a.srt" > "$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
grep -q "RANDOM weights" "$tmp/log" || { echo "no note on the random weights"; cat "$tmp/log"; exit 1; }
check_cues "$tmp/a.srt" srt || { echo "bad SRT"; exit 1; }
"$here/transcribe-file.sh" "$tmp/mix.wav" "$tmp/a.vtt" > "$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
check_cues "$tmp/a.vtt" vtt || { echo "bad VTT"; exit 1; }
# no OUT: SRT on stdout
"$here/transcribe-file.sh" "$tmp/mix.wav" > "$tmp/b.srt" 2> "$tmp/log" || { cat "$tmp/log"; exit 1; }
check_cues "$tmp/b.srt" srt || { echo "bad SRT on stdout"; exit 1; }

# the soundtrack of a video file (H.264 + Opus in Matroska)
gst-launch-1.0 -q -e filesrc location="$tmp/mix.wav" ! wavparse ! audioconvert ! opusenc ! \
  queue ! mux. videotestsrc num-buffers=330 ! video/x-raw,width=160,height=120,framerate=30/1 ! \
  x264enc speed-preset=ultrafast ! queue ! matroskamux name=mux ! \
  filesink location="$tmp/mix.mkv" > "$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
"$here/transcribe-file.sh" "$tmp/mix.mkv" "$tmp/c.srt" > "$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
check_cues "$tmp/c.srt" srt || { echo "bad SRT from the MKV"; exit 1; }

# played as a live source: two text lines on stdout, at the start of each speech
"$here/live-transcription.sh" --input "$tmp/mix.wav" --partials > "$tmp/out" 2> "$tmp/log" \
  || { cat "$tmp/log"; exit 1; }
python3 - "$tmp/out" <<'PY' || { echo "bad text lines:"; cat "$tmp/out"; exit 1; }
import re, sys
lines = open(sys.argv[1], encoding='utf-8').read().splitlines()
finals = [l for l in lines if re.match(r'^\[\d\d:\d\d:\d\d\.\d\d\d\] [^…]', l)]
assert len(finals) == 2, lines
for l, lo in zip(finals, (1.0, 6.5)):
    t = int(l[7:9]) + int(l[10:13]) / 1000
    assert lo - 0.35 <= t <= lo + 0.02, l
PY

# with --video over the file's picture, into an MP4 that plays back
"$here/live-transcription.sh" --input "$tmp/mix.mkv" --video --out "$tmp/v.mp4" > "$tmp/out" \
  2> "$tmp/log" || { cat "$tmp/log"; exit 1; }
[ "$(grep -c '^\[' "$tmp/out")" -eq 2 ] || { echo "no text with --video"; cat "$tmp/out"; exit 1; }
frames=$(gst-launch-1.0 filesrc location="$tmp/v.mp4" ! qtdemux ! h264parse ! \
  fakesink silent=false -v 2>/dev/null | grep -c "chain")
[ "$frames" -eq 330 ] || { echo "the MP4 has $frames frames, not 330"; exit 1; }

# errors name the file
if "$here/transcribe-file.sh" --model "$LFM2_CACHE/audio-tiny/model.gguf" \
    --mmproj "$tmp/no-such-mmproj.gguf" "$tmp/mix.wav" "$tmp/d.srt" > "$tmp/log" 2>&1; then
  echo "a missing mmproj should fail"; exit 1
fi
grep -q "no-such-mmproj.gguf" "$tmp/log" || { echo "error does not name the mmproj:"; cat "$tmp/log"; exit 1; }
if "$here/live-transcription.sh" --input "$tmp/mix.wav" --model "$LFM2_CACHE/audio-tiny/model.gguf" \
    --mmproj "$data/speech_4s.wav" > "$tmp/out" 2> "$tmp/log"; then
  echo "a WAV as the mmproj should fail"; exit 1
fi
grep -q "speech_4s.wav" "$tmp/log" || { echo "error does not name the mmproj:"; cat "$tmp/log"; exit 1; }
echo "ok"
