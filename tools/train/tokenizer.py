"""tokenizer.py — LFM2's byte-level BPE (tokenizer.ggml.model gpt2, pre lfm2) for the short
ASCII texts of the training data: prompts, captions, chat markers.

Same rules as the engine (docs/tokenizer.md): control-token texts become their ids, the rest is
split by the LLAMA3 pre-tokenizer regex, spelled in GPT-2's byte alphabet, and a piece that is
a vocabulary entry is emitted whole (ignore_merges); otherwise the lowest-ranked merge is
applied until none applies. Only ASCII text is accepted, so the regex's Unicode letter and
number classes reduce to [A-Za-z] and [0-9] (the parity test checks ids against `lfm2 tokenize`).
"""
import os
import re

from gguf import Reader

# The vocabulary of the trained models: the bundled LFM2-VL tiny backbone's (613 tokens, the
# LFM2 control tokens and image markers, 236 English merges — mkmodel's vl-tiny layout).
DEFAULT_VOCAB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "vision",
                             "lfm2-vl-tiny-text-q4_0.gguf")

_PRE = re.compile(
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
    r"|[^\r\nA-Za-z0-9]?[A-Za-z]+"
    r"|[0-9]{1,3}"
    r"| ?[^\sA-Za-z0-9]+[\r\n]*"
    r"|\s*[\r\n]+"
    r"|\s+(?!\S)"
    r"|\s+")


def _byte_alphabet():
    """GPT-2's reversible byte -> character map (printable bytes map to themselves)."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    out, n = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + n)
            n += 1
    return out


_BYTE = _byte_alphabet()


class Tokenizer:
    """Vocabulary and merges from a GGUF file (any LFM2 text model written in the gpt2 layout)."""

    CONTROL = 3

    def __init__(self, gguf_path):
        r = Reader(gguf_path)
        if r.value("tokenizer.ggml.model") != "gpt2":
            raise ValueError("%s: tokenizer.ggml.model is not gpt2" % gguf_path)
        self.tokens = r.value("tokenizer.ggml.tokens")
        types = r.value("tokenizer.ggml.token_type") or [1] * len(self.tokens)
        self.id = {t: i for i, t in enumerate(self.tokens)}
        self.rank = {}
        for i, m in enumerate(r.value("tokenizer.ggml.merges")):
            a, b = m.split(" ", 1)
            self.rank.setdefault((a, b), i)
        self.bos = r.value("tokenizer.ggml.bos_token_id", 1)
        self.eos = r.value("tokenizer.ggml.eos_token_id", 7)
        self.pad = r.value("tokenizer.ggml.padding_token_id", 0)
        self.add_bos = r.value("tokenizer.ggml.add_bos_token", True)
        self.specials = sorted((t for t, ty in zip(self.tokens, types) if ty == self.CONTROL),
                               key=len, reverse=True)
        self._special_re = re.compile("|".join(re.escape(s) for s in self.specials))
        self.source = gguf_path

    def lookup(self, text):
        return self.id[text]

    def _bpe(self, piece):
        s = "".join(_BYTE[b] for b in piece.encode("ascii"))
        if s in self.id:
            return [self.id[s]]
        sym = list(s)
        while len(sym) > 1:
            best, at = None, -1
            for i in range(len(sym) - 1):
                r = self.rank.get((sym[i], sym[i + 1]))
                if r is not None and (best is None or r < best):
                    best, at = r, i
            if best is None:
                break
            sym[at:at + 2] = [sym[at] + sym[at + 1]]
        out = []
        for x in sym:
            if x in self.id:
                out.append(self.id[x])
            else:   # a final symbol that is no entry falls back to its bytes
                out += [self.id[c] for c in x]
        return out

    def encode(self, text, bos=False, special=True):
        """Token ids of an ASCII text; control-token texts become their ids when special."""
        if not text.isascii():
            raise ValueError("this tokenizer takes ASCII text only: %r" % text)
        ids = [self.bos] if bos and self.add_bos else []
        pos = 0
        parts = []
        if special and self.specials:
            for m in self._special_re.finditer(text):
                parts.append((text[pos:m.start()], None))
                parts.append((None, self.id[m.group(0)]))
                pos = m.end()
        parts.append((text[pos:], None))
        for frag, sid in parts:
            if sid is not None:
                ids.append(sid)
                continue
            for piece in _PRE.findall(frag):
                ids += self._bpe(piece)
        return ids

    def decode(self, ids):
        inv = {c: b for b, c in _BYTE.items()}
        out = bytearray()
        for i in ids:
            t = self.tokens[i]
            if t in self.specials:
                continue
            out += bytes(inv[c] for c in t)
        return out.decode("utf-8", "replace")
