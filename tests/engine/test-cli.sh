#!/bin/sh
# test-cli — the `lfm2` command: logits parity through the CLI, tokenize, generate, info, errors.
set -u
CLI=${LFM2_CLI:?}
D=${LFM2_TEST_DATA:?}/text
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if ! "$@"; then echo "FAIL: $*" >&2; fail=1; fi; }

M=$D/tiny-q8_0/lfm2-tiny-q8_0.gguf
# prompt ids from the fixture, logits compared with llama.cpp's through python3's stdlib
IDS=$(python3 -c "import json;print(','.join(map(str,json.load(open('$D/tiny-q8_0/logits.json'))['prompt_ids'])))")
cmp_logits() {  # cmp_logits OUT REF TOL
python3 - "$1" "$2" "$3" <<'PY'
import struct, sys
a = open(sys.argv[1], 'rb').read(); b = open(sys.argv[2], 'rb').read()
if len(a) != len(b): sys.exit("size %d != %d" % (len(a), len(b)))
n = len(a) // 4
x = struct.unpack('<%df' % n, a); y = struct.unpack('<%df' % n, b)
d = max(abs(p - q) for p, q in zip(x, y))
print("max |dlogit| %.3g" % d)
sys.exit(0 if d <= float(sys.argv[3]) else 1)
PY
}
check "$CLI" logits -m "$M" --tokens "$IDS" -o "$T/prefill.f32" -t 2
check cmp_logits "$T/prefill.f32" "$D/tiny-q8_0/prefill.f32" 0.0338
check "$CLI" logits -m "$M" --tokens "$IDS" -o "$T/seq.f32" --decode
check cmp_logits "$T/seq.f32" "$D/tiny-q8_0/sequential.f32" 0.0338

# tokenize: the fixture's prompt text gives the fixture's ids (BOS only with --bos)
python3 -c "import json,sys;sys.stdout.write(json.load(open('$D/tiny-q8_0/logits.json'))['prompt_text'])" > "$T/prompt.txt"
check sh -c "'$CLI' tokenize -m '$M' -f '$T/prompt.txt' --bos | tr '\n' ',' | sed 's/,\$//' > '$T/ids.txt'"
check test "$(cat "$T/ids.txt")" = "$IDS"
check sh -c "'$CLI' tokenize -m '$M' -f '$T/prompt.txt' | head -1 | grep -qx 6"

# generate: greedy is deterministic, streams text and reports tokens/s
check sh -c "'$CLI' generate -m '$M' -p 'Hello' -n 8 --temp 0 > '$T/g1.txt' 2> '$T/g1.err'"
check sh -c "'$CLI' generate -m '$M' -p 'Hello' -n 8 --temp 0 > '$T/g2.txt' 2>/dev/null"
check cmp -s "$T/g1.txt" "$T/g2.txt"
check grep -q "tokens/s" "$T/g1.err"
check grep -q "^Hello" "$T/g1.txt"
check sh -c "'$CLI' generate -m '$M' -p 'Hi' --chat -n 4 --seed 3 > /dev/null 2>&1"

# generate -f: the file's text is the prompt; a NUL byte (it would cut the text short), an
# empty file and one of white space are refused with a message, with and without --chat
printf 'Hello' > "$T/p.txt"
check sh -c "'$CLI' generate -m '$M' -f '$T/p.txt' -n 8 --temp 0 > '$T/g3.txt' 2>/dev/null"
check cmp -s "$T/g1.txt" "$T/g3.txt"
printf 'Hello\000world' > "$T/nul.txt"
check sh -c "! '$CLI' generate -m '$M' -f '$T/nul.txt' -n 4 > /dev/null 2> '$T/e5' && grep -q 'nul.txt: NUL byte at offset 5' '$T/e5'"
: > "$T/empty.txt"
check sh -c "! '$CLI' generate -m '$M' -f '$T/empty.txt' -n 4 > /dev/null 2> '$T/e6' && grep -q 'empty.txt: the prompt is empty' '$T/e6'"
check sh -c "! '$CLI' generate -m '$M' -f '$T/empty.txt' --chat -n 4 > /dev/null 2> '$T/e6' && grep -q 'the prompt is empty' '$T/e6'"
printf ' \n\t\r\n' > "$T/ws.txt"
check sh -c "! '$CLI' generate -m '$M' -f '$T/ws.txt' --chat -n 4 > /dev/null 2> '$T/e7' && grep -q 'empty (only white space)' '$T/e7'"
check sh -c "! '$CLI' generate -m '$M' -p '' -n 4 > /dev/null 2> '$T/e8' && grep -q 'the prompt is empty' '$T/e8'"

# options: help from the table, --name=value, the old spellings, errors naming the option
check sh -c "'$CLI' generate --help | grep -q -- '--repeat-last-n N'"
check sh -c "'$CLI' generate -m '$M' -p 'Hello' --n-predict=8 --temp=0 > '$T/g4.txt' 2>/dev/null"
check cmp -s "$T/g1.txt" "$T/g4.txt"
check sh -c "'$CLI' tokenize -m '$M' -p '<|im_start|>' --no-parse-special | head -1 | grep -vqx 6"
check sh -c "! '$CLI' generate -m '$M' -p x --bogus 2> '$T/e9' && grep -q \"unknown option '--bogus'\" '$T/e9'"
check sh -c "! '$CLI' generate -m '$M' -p x -n many 2> '$T/e10' && grep -q \"\\-n: 'many' is not an integer\" '$T/e10'"
check sh -c "! '$CLI' info -m '$M' extra 2> '$T/e11' && grep -q \"unexpected argument 'extra'\" '$T/e11'"
check sh -c "! '$CLI' bench -m '$M' -t 2> '$T/e12' && grep -q 'option -t needs a value' '$T/e12'"

# info
check sh -c "'$CLI' info -m '$D/moe/tiny-moe-q8_0/lfm2moe-tiny-q8_0.gguf' | grep -q 'experts:        8 (2 used'"
check sh -c "'$CLI' info -m '$M' | grep -q 'conv conv attn conv conv attn'"

# bench: the model benchmark's JSON fields, and the matmul benchmark. With OpenBLAS, --blas
# times sgemm on the same product and fails unless both answers agree (max rel. diff <= 1e-4).
check sh -c "'$CLI' bench -m '$M' -p 8 -n 4 -r 1 -t 2 --json > '$T/b.json'"
check python3 -c "import json;d=json.load(open('$T/b.json'));assert d['prompt_tokens_per_s']>0 and d['gen_tokens_per_s']>0 and d['threads']==2 and d['peak_rss_bytes']>0 and d['model_type'], d"
check sh -c "'$CLI' bench --matmul q4_k -k 256 -o 64 -p 3 -t 2 -r 1 --prepared | grep -q 'GMAC/s'"
if "$CLI" bench --matmul f32 -k 64 -o 16 -p 2 -r 1 --blas 2>&1 | grep -q 'has no OpenBLAS'; then
  echo "bench --blas: built without OpenBLAS, not checked"
else
  for ty in f32 f16; do
    check sh -c "'$CLI' bench --matmul $ty -k 320 -o 200 -p 37 -t 2 -r 1 --blas --json > '$T/blas.json'"
    check python3 -c "import json;d=json.load(open('$T/blas.json'));assert d['cpu_path']=='openblas' and d['max_rel_diff_vs_lfm2']<=1e-4, d"
  done
  check sh -c "! '$CLI' bench --matmul q8_0 --blas 2> '$T/e0' && grep -q 'F32 weights' '$T/e0'"
fi

# errors: non-zero exit and a message naming the problem
check sh -c "! '$CLI' generate -m '$T/missing.gguf' -p x 2> '$T/e1' && grep -q 'missing.gguf' '$T/e1'"
head -c 1000 "$M" > "$T/trunc.gguf"
check sh -c "! '$CLI' info -m '$T/trunc.gguf' 2> '$T/e2' && grep -q 'trunc.gguf' '$T/e2'"
check sh -c "! '$CLI' logits -m '$M' --tokens 1,99999 -o '$T/x.f32' 2> '$T/e3' && grep -q 'vocabulary' '$T/e3'"
check sh -c "! '$CLI' generate -m '$M' 2>/dev/null"
check sh -c "! '$CLI' frobnicate 2>/dev/null"
check sh -c "! '$CLI' info -m '${LFM2_TEST_DATA}/vision/lfm2-vl-tiny-mmproj-f32.gguf' 2> '$T/e4' && grep -q mmproj '$T/e4'"
exit $fail
