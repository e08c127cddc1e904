#!/bin/sh
# trained-demo: the README's demo — pipelines/live-captioning.sh with the bundled trained model
# (its default) cycling every videotestsrc pattern the model knows — checked against the truth:
# at least 90 % of the SRT's captions must be the caption of the pattern that was on screen at
# the caption's timestamp. Which pattern was on screen when comes from the pipeline the script
# printed (each videotestsrc's pattern, timestamp-offset and num-buffers); each pattern's caption
# from tools/train/patterns.py.
set -eu
SRC=${LFM2_SOURCE_ROOT:?}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
patterns=$(python3 -c "import sys; sys.path.insert(0, '$SRC/tools/train'); import patterns; print(','.join(patterns.PATTERNS))")
"$SRC/pipelines/live-captioning.sh" --patterns "$patterns" --pattern-seconds 1 --seconds 15 \
  --out "$T" > "$T/log" 2>&1 || { cat "$T/log"; exit 1; }
python3 - "$T/log" "$T/live-captioning.srt" "$SRC/tools/train" <<'PY'
import re, sys
sys.path.insert(0, sys.argv[3])
import patterns
log = open(sys.argv[1]).read()
segs = [(int(off) / 1e9, int(off) / 1e9 + int(n) / int(fps), p) for p, n, off, fps in re.findall(
    r"videotestsrc pattern=(\S+) num-buffers=(\d+) timestamp-offset=(\d+) ! \S*framerate=(\d+)/1", log)]
assert len(segs) >= len(patterns.PATTERNS), "no pattern cycle in the pipeline:\n" + log
cues = re.findall(r"(\d+):(\d+):(\d+),(\d+) --> [^\n]*\n([^\n]*)\n", open(sys.argv[2]).read())
right = 0
for hh, mm, ss, ms, text in cues:
    t = int(hh) * 3600 + int(mm) * 60 + int(ss) + int(ms) / 1000
    on = [p for a, b, p in segs if a <= t + 5e-4 < b]
    want = patterns.CAPTIONS[on[0]] if on else None
    right += text == want
    if text != want:
        print("%.3f s: '%s' on %s (expected '%s')" % (t, text, on[0] if on else "nothing", want))
n = len(cues)
print("demo: %d/%d captions name the pattern on screen (%.1f %%)" % (right, n, 100.0 * right / max(n, 1)))
sys.exit(0 if n >= 15 and right >= 0.9 * n else 1)
PY
