#!/bin/sh
# Runs live-captioning.sh on the bundled tiny VL pair: a 2-second test source gives a playable
# MP4 and a well-formed SRT (numbered cues, increasing times inside the run, one line of text
# each); the MP4 fed back in as --input is captioned too; a missing mmproj fails naming it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check_srt() {  # FILE MAX_SECONDS
  awk -v max="$2" '
    function secs(t) { split(t, a, /[:,]/); return a[1] * 3600 + a[2] * 60 + a[3] + a[4] / 1000 }
    state == 0 && /^[0-9]+$/ { if ($1 != ++n) { print "cue " n " numbered " $1; bad = 1 } state = 1; next }
    state == 1 {
      if ($0 !~ /^[0-9][0-9]:[0-9][0-9]:[0-9][0-9],[0-9][0-9][0-9] --> [0-9][0-9]:[0-9][0-9]:[0-9][0-9],[0-9][0-9][0-9]$/) { print "bad time line: " $0; bad = 1 }
      s = secs($1); e = secs($3)
      if (e < s || s < last || e > max + 1) { print "bad times: " $0; bad = 1 }
      last = s; state = 2; next
    }
    state == 2 { if ($0 == "") { print "empty caption in cue " n; bad = 1 } state = 3; next }
    state == 3 { if ($0 != "") { print "caption of cue " n " has more than one line"; bad = 1 } state = 0; next }
    END { if (n == 0) { print "no cues"; bad = 1 } exit bad }' "$1"
}

"$here/live-captioning.sh" --seconds 2 --size 160x120 --max-tokens 8 --out "$tmp/a" > "$tmp/log" 2>&1 \
  || { cat "$tmp/log"; exit 1; }
grep -q "^MP4: $tmp/a/live-captioning.mp4" "$tmp/log" || { echo "MP4 path not printed"; cat "$tmp/log"; exit 1; }
grep -q "^SRT: $tmp/a/live-captioning.srt" "$tmp/log" || { echo "SRT path not printed"; cat "$tmp/log"; exit 1; }
[ -s "$tmp/a/live-captioning.mp4" ] || { echo "no MP4"; exit 1; }
check_srt "$tmp/a/live-captioning.srt" 2 || { cat "$tmp/a/live-captioning.srt"; exit 1; }
# the MP4 plays back: 60 frames of 160×120
frames=$(gst-launch-1.0 filesrc location="$tmp/a/live-captioning.mp4" ! qtdemux ! \
  h264parse ! fakesink silent=false -v 2>/dev/null | grep -c "chain")
[ "$frames" -eq 60 ] || { echo "the MP4 has $frames frames, not 60"; exit 1; }

# a file as the source
"$here/live-captioning.sh" --input "$tmp/a/live-captioning.mp4" --max-tokens 8 --out "$tmp/b" \
  > "$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
check_srt "$tmp/b/live-captioning.srt" 2 || { cat "$tmp/b/live-captioning.srt"; exit 1; }

# a processor config: its settings reach lfm2vl (a bad value fails naming the file and field)
printf '{"image_processor": {"use_thumbnail": false, "resample": 3}}' > "$tmp/pc.json"
"$here/live-captioning.sh" --seconds 1 --size 160x120 --max-tokens 4 --out "$tmp/d" \
  --preprocessor-config "$tmp/pc.json" > "$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
printf '{"max_tiles": "ten"}' > "$tmp/bad.json"
if "$here/live-captioning.sh" --seconds 1 --size 160x120 --out "$tmp/e" \
    --preprocessor-config "$tmp/bad.json" > "$tmp/log" 2>&1; then
  echo "a bad processor config should fail"; exit 1
fi
grep -q "bad.json: max_tiles" "$tmp/log" || { echo "error does not name file and field:"; cat "$tmp/log"; exit 1; }

# errors name the file
if "$here/live-captioning.sh" --seconds 1 --mmproj "$tmp/no-such-mmproj.gguf" --out "$tmp/c" \
    > "$tmp/log" 2>&1; then
  echo "a missing mmproj should fail"; exit 1
fi
grep -q "no-such-mmproj.gguf" "$tmp/log" || { echo "error does not name the mmproj:"; cat "$tmp/log"; exit 1; }
echo "ok"
