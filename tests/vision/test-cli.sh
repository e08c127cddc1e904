#!/bin/sh
# test-cli — `lfm2 embed-image` and `lfm2 caption`: embeddings through the CLI against
# mtmd's, token counts, deterministic greedy captions, benchmark output, errors.
set -u
CLI=${LFM2_CLI:?}
D=${LFM2_TEST_DATA:?}/vision
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if ! "$@"; then echo "FAIL: $*" >&2; fail=1; fi; }

MM=$D/lfm2-vl-tiny-mmproj-f32.gguf
TXT=$D/lfm2-vl-tiny-text-q4_0.gguf
cmp_embd() {  # cmp_embd OUT REF MAX MEAN
python3 - "$@" <<'PY'
import struct, sys
a = open(sys.argv[1], 'rb').read(); b = open(sys.argv[2], 'rb').read()
if len(a) != len(b): sys.exit("size %d != %d" % (len(a), len(b)))
n = len(a) // 4
x = struct.unpack('<%df' % n, a); y = struct.unpack('<%df' % n, b)
d = [abs(p - q) for p, q in zip(x, y)]
mx, mean = max(d), sum(d) / n
print("max |d| %.3g, mean |d| %.3g" % (mx, mean))
sys.exit(0 if mx <= float(sys.argv[3]) and mean < float(sys.argv[4]) else 1)
PY
}

# embeddings through the CLI, llama.cpp mode, tiled picture: mtmd's numbers and count
check sh -c "'$CLI' embed-image --mmproj '$MM' --image '$D/images/test-1100x500.png' -o '$T/e.f32' --preprocess llamacpp -t 2 > '$T/n.txt' 2> '$T/e.err'"
check test "$(head -1 "$T/n.txt")" = 742
check cmp_embd "$T/e.f32" "$D/test-1100x500/embd.f32" 2e-3 2e-4
check grep -q "2×1 tiles" "$T/e.err"
# single picture, PPM input
check sh -c "'$CLI' embed-image --mmproj '$MM' --image '$D/images/test-37x300.ppm' -o '$T/s.f32' --preprocess llamacpp > '$T/n2.txt' 2>/dev/null"
check test "$(cat "$T/n2.txt")" = 69
check cmp_embd "$T/s.f32" "$D/test-37x300/embd.f32" 2e-3 2e-4
# official mode (default): same count for this picture, 742 rows of 128 floats
check sh -c "'$CLI' embed-image --mmproj '$MM' --image '$D/images/test-1100x500.png' -o '$T/o.f32' > '$T/n3.txt' 2>/dev/null"
check test "$(cat "$T/n3.txt")" = 742
check test "$(wc -c < "$T/o.f32")" -eq $((742 * 128 * 4))
# --no-tiling and a text model: layout printed with the marker tokens
check sh -c "'$CLI' embed-image --mmproj '$MM' --image '$D/images/test-1100x500.png' -o '$T/nt.f32' --no-tiling -m '$TXT' > '$T/n4.txt' 2> '$T/l.err'"
check test "$(cat "$T/n4.txt")" = 230
check grep -q "<|image_start|> \[230 rows\] <|image_end|>" "$T/l.err"

# --preprocessor-config: the file's settings, the options over them, errors naming file and field
printf '{"image_processor": {"use_thumbnail": false, "max_pixels_tolerance": 1.5, "resample": 3}}' > "$T/pc.json"
check sh -c "'$CLI' embed-image --mmproj '$MM' --plan --preprocessor-config '$T/pc.json' 640x640 > '$T/p1.txt'"
check test "$(cat "$T/p1.txt")" = "640x640 1024"    # tolerance 1.5 tiles 2×2, no thumbnail
check sh -c "'$CLI' embed-image --mmproj '$MM' --plan --preprocessor-config '$T/pc.json' --use-thumbnail --max-pixels-tolerance 2 640x640 1024x1024 > '$T/p2.txt'"
check test "$(tr '\n' ' ' < "$T/p2.txt")" = "640x640 256 1024x1024 1280 "
check sh -c "'$CLI' embed-image --mmproj '$MM' --preprocessor-config '$T/pc.json' --image '$D/images/test-1100x500.png' -o '$T/pc.f32' 2> '$T/pc.err' > /dev/null"
check grep -q "2×1 tiles.*= 512 image tokens, bicubic" "$T/pc.err"
check sh -c "'$CLI' embed-image --mmproj '$MM' --preprocessor-config '$T/pc.json' --resample bilinear --image '$D/images/test-1100x500.png' -o '$T/pc2.f32' 2> '$T/pc2.err' > /dev/null"
check grep -q "bilinear" "$T/pc2.err"
check sh -c "! cmp -s '$T/pc.f32' '$T/pc2.f32'"      # the filter changes the pixels
printf '{"min_tiles": 0}' > "$T/bad.json"
check sh -c "! '$CLI' embed-image --mmproj '$MM' --plan --preprocessor-config '$T/bad.json' 64x64 2> '$T/pe' && grep -q 'bad.json: min_tiles is 0' '$T/pe'"
check sh -c "! '$CLI' caption -m '$TXT' --mmproj '$MM' --image '$D/images/test-64x48.png' --preprocessor-config '$T/none.json' 2> '$T/pe2' && grep -q 'none.json' '$T/pe2'"
check sh -c "! '$CLI' embed-image --mmproj '$MM' --plan --min-tiles 1 725x723 > '$T/pr.txt' 2>/dev/null && grep -q '725x723 refused: .*transformers' '$T/pr.txt'"
check sh -c "! '$CLI' embed-image --mmproj '$MM' --plan --resample lanczos 64x64 2>/dev/null"

# caption: greedy is deterministic, timings reported
check sh -c "'$CLI' caption -m '$TXT' --mmproj '$MM' --image '$D/images/test-64x48.png' -n 8 --temp 0 > '$T/c1.txt' 2> '$T/c1.err'"
check sh -c "'$CLI' caption -m '$TXT' --mmproj '$MM' --image '$D/images/test-64x48.ppm' -n 8 --temp 0 > '$T/c2.txt' 2>/dev/null"
check cmp -s "$T/c1.txt" "$T/c2.txt"
check grep -q "timings:.*encoder" "$T/c1.err"
check sh -c "'$CLI' caption -m '$TXT' --mmproj '$MM' --image '$D/images/test-320x224.png' -p 'What colour?' -s 'Be brief.' -n 4 --preprocess llamacpp > /dev/null 2>&1"

# benchmark mode
check sh -c "'$CLI' embed-image --mmproj '$MM' --bench -r 2 --json > '$T/b.json' 2>/dev/null"
check grep -q '"tile_ms_median"' "$T/b.json"

# the model generator's VL pair: the loader takes its mmproj (F32 and F16), the backbone has the
# marker tokens as single entries, captioning runs end to end
check "$CLI" mkmodel --config vl-tiny --type q4_0 -o "$T/vl.gguf" --mmproj-out "$T/mm16.gguf" --mmproj-type f16
check "$CLI" mkmodel --config vl-tiny --type q8_0 -o "$T/vl8.gguf" --mmproj-out "$T/mm32.gguf" --mmproj-type f32
for mm in "$T/mm16.gguf" "$T/mm32.gguf"; do
  check sh -c "'$CLI' embed-image --mmproj '$mm' -m '$T/vl.gguf' --image '$D/images/test-1100x500.ppm' -o '$T/g.f32' > '$T/gn.txt' 2> '$T/g.err'"
  check test "$(cat "$T/gn.txt")" = 742
  check grep -q "<|image_start|> <|img_row_1_col_1|> \[256 rows\] <|img_row_1_col_2|> \[256 rows\] <|img_thumbnail|> \[230 rows\] <|image_end|>" "$T/g.err"
done
check sh -c "'$CLI' caption -m '$T/vl8.gguf' --mmproj '$T/mm16.gguf' --image '$D/images/test-256x256.png' -n 4 > /dev/null 2>&1"

# errors: non-zero exit, message naming the problem
check sh -c "! '$CLI' embed-image --mmproj '$T/missing.gguf' --image '$D/images/test-64x48.png' -o '$T/x' 2> '$T/e1' && grep -q 'missing.gguf' '$T/e1'"
check sh -c "! '$CLI' embed-image --mmproj '$TXT' --image '$D/images/test-64x48.png' -o '$T/x' 2> '$T/e2' && grep -q 'expected .clip.' '$T/e2'"
printf 'not a picture' > "$T/bad.png"
check sh -c "! '$CLI' embed-image --mmproj '$MM' --image '$T/bad.png' -o '$T/x' 2> '$T/e3' && grep -q 'bad.png' '$T/e3'"
check sh -c "test \$(wc -l < '$T/e3') -eq 1"   # one clear line, no FFmpeg chatter
check sh -c "! '$CLI' caption -m '${LFM2_TEST_DATA}/text/small-f32/lfm2-small-f32.gguf' --mmproj '$MM' --image '$D/images/test-64x48.png' 2> '$T/e4' && grep -q 'n_embd 256' '$T/e4'"
check sh -c "! '$CLI' embed-image --mmproj '$MM' --image '$D/images/test-64x48.png' -o '$T/x' --preprocess bogus 2>/dev/null"
check sh -c "! '$CLI' caption --mmproj '$MM' --image '$D/images/test-64x48.png' 2>/dev/null"
exit $fail
