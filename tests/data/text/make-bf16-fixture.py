#!/usr/bin/env python3
"""make-bf16-fixture.py — the tiny-bf16 fixture: llama.cpp's logits on a BF16 file.

The shared fixture set has no BF16 file, so this one is made here, the same way (standard
library only):

    lfm2 mkmodel --config tiny --type bf16 -o text/tiny-bf16/lfm2-tiny-bf16.gguf
    llama_ref logits text/tiny-bf16/lfm2-tiny-bf16.gguf OUT --tokens P --decode D --greedy 8 \
        --sequential --f32 --fa off --kv f32 --threads 2     # P, D: tiny-f16's prompt and decode ids
    python3 make-bf16-fixture.py OUT text/tiny-bf16

Tolerance, fixed before comparing with the engine: ggml rounds the activations of a BF16
product to bf16 (8 significant bits, like Q8_0's 8-bit quants), so an activation near a rounding
boundary can land one bf16 step apart in two correct engines and the random network amplifies
it, as with the quantized files. The fixture therefore takes the quantized files' rule: 2 % of the
array's max |logit| (the shared fixtures' "1.5 × measured" term needs a float64 reference, which
is not available here). Argmax is checked on the rows whose llama.cpp margin exceeds twice that.
"""
import json
import os
import shutil
import struct
import sys


def read_f32(path, cols):
    data = open(path, 'rb').read()
    n = len(data) // 4
    v = struct.unpack('<%df' % n, data)
    return [v[i:i + cols] for i in range(0, n, cols)]


def stats(rows):
    mx = max(abs(x) for r in rows for x in r)
    margins = []
    for r in rows:
        a = sorted(r, reverse=True)
        margins.append(a[0] - a[1])
    tol = round(0.02 * mx, 5)
    return {
        "max_abs_logit": round(mx, 4),
        "min_top1_top2_margin": round(min(margins), 5),
        "min_margin_row": margins.index(min(margins)),
        "recommended_tolerance": tol,
        "tolerance_rule": "2 % of max |logit| (bf16 activations: 8 significant bits, as for Q8_0)",
        "argmax_check_rows": [i for i, m in enumerate(margins) if m > 2 * tol],
    }


def main():
    out, dst = sys.argv[1], sys.argv[2]
    meta = json.load(open(os.path.join(out, 'meta.json')))
    V = meta['n_vocab']
    fx = {
        "model": "lfm2-tiny-bf16.gguf",
        "vocab": "tiny",
        "case": "chat (tiny-f16's prompt and decode tokens)",
        "prompt_ids": meta['prefill_tokens'],
        "decode_ids": meta['decode_tokens'],
        "greedy_ids": meta['greedy_tokens'],
        "greedy_next": meta['greedy_next'],
        "n_vocab": V,
        "dtype": "float32",
        "byte_order": "little-endian",
        "layout": "row-major [rows][n_vocab]",
        "files": {},
        "llama_cpp": {k: meta[k] for k in ('llama_version', 'ggml_commit', 'threads', 'kv_type',
                                           'flash_attn', 'ubatch', 'n_ctx')},
        "stats": {},
    }
    for name in ('prefill', 'decode', 'sequential', 'greedy'):
        src = os.path.join(out, name + '_logits.f32')
        rows = read_f32(src, V)
        shutil.copyfile(src, os.path.join(dst, name + '.f32'))
        fx["files"][name] = {"file": name + '.f32', "shape": [len(rows), V]}
        fx["stats"][name] = stats(rows)
    with open(os.path.join(dst, 'logits.json'), 'w') as f:
        json.dump(fx, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()
