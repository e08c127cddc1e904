#!/usr/bin/env python3
"""Writes tests/tokenizer/data/extra.bin: extra tokenizer test strings (NUL-separated UTF-8,
deterministic), beyond the 29 strings of tests/data/text/tokenize. llama.cpp's tokenization of
them (extra-tiny.jsonl, extra-small.jsonl) comes from the peer tool (shared/peer/README.md):

    python3 tests/tokenizer/make-extra.py > tests/tokenizer/data/extra.bin
    llama_ref tokenize tests/data/text/tiny-f32/lfm2-tiny-f32.gguf  tests/tokenizer/data/extra.bin > tests/tokenizer/data/extra-tiny.jsonl
    llama_ref tokenize tests/data/text/small-f32/lfm2-small-f32.gguf tests/tokenizer/data/extra.bin > tests/tokenizer/data/extra-small.jsonl

after which the "text" member of each line was dropped (it holds the raw bytes of the invalid
strings, which is not valid JSON) and the lines compacted:

    python3 -c 'import json,sys; [print(json.dumps({k: v for k, v in json.loads(l.decode("latin-1")).items() if k != "text"}, separators=(",", ":"))) for l in sys.stdin.buffer if l.strip()]'

The strings mix what the pre-tokenizer treats differently: letters of several scripts,
combining marks, digits of several kinds (Nd, Nl, No), every White_Space character, CR/LF runs,
apostrophe contractions in both cases, punctuation and symbols, emoji, special-token texts
(whole, doubled, truncated) and invalid UTF-8 (stray continuation bytes, truncated sequences,
overlong forms, surrogates; not code points past U+10FFFF, on which llama.cpp aborts).
Only characters of Unicode 14 (the tables of engine/unicode-data.c) are used.
"""
import random
import sys

POOL = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") * 3
    + list("0123456789") * 2
    + list(" ") * 12
    + list("\t\n\r\x0b\x0c") * 2
    + ["\u0085", "\u00a0", "\u1680", "\u2000", "\u2005", "\u200a", "\u2028", "\u2029",
       "\u202f", "\u205f", "\u3000", "\u001c", "\u200b"]
    + list(".,;:!?'\"()[]{}<>|/\\-_+=*&^%$#@~`")
    + ["'s", "'S", "'t", "'re", "'RE", "'ve", "'Ve", "'m", "'ll", "'LL", "'d", "'x"]
    + list("éèêëàâäôöûüçñßøåæÉÀÇ")
    + ["e\u0301", "a\u0308", "\u0301", "\u0327"]
    + list("αβγδΩπσς") + list("абвгдЖЩЯ") + list("中文字東京語") + list("한국어")
    + list("ひらがなカタカナ")
    + ["\u0660", "\u0661", "\u0969", "\uff11", "\u00b2", "\u00bd", "\u2167", "\u216b", "\u3007"]
    + ["€", "£", "¥", "→", "∑", "©", "°", "…", "—", "“", "”"]
    + ["😀", "🚀", "👍🏽", "🇫🇷", "❤️"]
    + ["<|im_start|>", "<|im_end|>", "<|pad|>", "<image>", "<|image_start|>", "<|im_",
       "im_end|>", "<|startoftext|>", "<|endoftext|>", "<|tool_call_start|>", "<unused0>"]
)

FIXED = [
    b"a\xffb",                      # stray bytes
    b"\x80\x80abc",
    b"caf\xc3",                     # truncated 2-byte sequence at the end
    b"\xe2\x82",                    # truncated 3-byte sequence
    b"\xe2\x82 x \xf0\x9f\x98",     # truncated sequences inside text
    b"\xc0\x80\xc1\xbf",            # overlong forms
    b"\xed\xa0\x80\xed\xbf\xbf",    # surrogates
    b"\xf8\x88\x80\x80\x80",        # 5-byte form
    b"ok \xfe\xff ok",
    b"<|im_end|>\xff<|im_start|>",
    b"x'\xffs",
    "   \n\n\r\n  \t  end".encode(),
    b"12345678901234567890",
    b"a1b22c333d4444",
    "hello\u00a0world\u3000again\u2003x".encode(),
    b"I'M YOU'RE WE'VE THEY'LL SHE'D IT'S DON'T",
    b"''''' 's 't",
    b" ' s",
    b"\n",
    b" ",
    b"  ",
    b"x ",
    b"x  ",
    b"<|im_start|><|im_end|><|im_start|>",
    b"<|im_start|",
    b"<<|im_end|>>",
]


def main():
    rng = random.Random(20240517)
    out = list(FIXED)
    for _ in range(150):
        n = rng.randint(1, 40)
        out.append("".join(rng.choice(POOL) for _ in range(n)).encode("utf-8"))
    sys.stdout.buffer.write(b"\0".join(out))


if __name__ == "__main__":
    main()
