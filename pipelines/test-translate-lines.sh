#!/bin/sh
# Runs translate-lines.sh on the bundled fixture model: one output line per input line, empty
# lines kept, the same output twice (the sampler restarts from its seed for every line).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

printf 'Hello, how are you?\n\nThe weather is nice today.\nGood night' > "$tmp/in.txt"
MAX_TOKENS=12 "$here/translate-lines.sh" "$tmp/in.txt" "$tmp/out1.txt"
MAX_TOKENS=12 "$here/translate-lines.sh" "$tmp/in.txt" "$tmp/out2.txt"

lines=$(wc -l < "$tmp/out1.txt")
[ "$lines" -eq 4 ] || { echo "expected 4 output lines, got $lines"; cat "$tmp/out1.txt"; exit 1; }
[ -z "$(sed -n 2p "$tmp/out1.txt")" ] || { echo "line 2 should stay empty"; exit 1; }
[ -n "$(sed -n 1p "$tmp/out1.txt")$(sed -n 3p "$tmp/out1.txt")" ] || { echo "no text generated"; exit 1; }
cmp -s "$tmp/out1.txt" "$tmp/out2.txt" || { echo "two runs differ"; exit 1; }

# a missing model fails with the path in the message
if "$here/translate-lines.sh" "$tmp/in.txt" "$tmp/out3.txt" "$tmp/no-such.gguf" \
    > "$tmp/err.txt" 2>&1; then
  echo "a missing model should fail"; exit 1
fi
grep -q "no-such.gguf" "$tmp/err.txt" || { echo "error does not name the model:"; cat "$tmp/err.txt"; exit 1; }
echo "ok"
