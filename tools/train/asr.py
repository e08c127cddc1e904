"""asr.py — a tiny LFM2-Audio speech recognizer: the LFM2 backbone (backbone.py) reading the
FastConformer + adapter rows (conformer.py) in the layout the engine builds for `lfm2 transcribe`
and `lfm2asr` (audio/prompt.c: no markers, the rows between the user turn's header and its end):

    BOS <|im_start|>system\\nPerform ASR.<|im_end|>\\n<|im_start|>user\\n  … audio rows …
    <|im_end|>\\n<|im_start|>assistant\\n   " word word word" <|im_end|>

The transcript is lower-case words with a leading space (the engine trims it), so every word
is the same whole-word token wherever it stands: the vocabulary is the audio-tiny backbone's
(`lfm2 mkmodel --config audio-tiny`: LFM2's control tokens, 128 <|audio_start|> …, bytes, 236
merges) extended by one token per word of the closed vocabulary (speech.vocabulary) and the
merges that build it — byte-level BPE as before, which the engine and llama.cpp read unchanged.
"""
import os
import subprocess

import torch
import torch.nn as nn

import gguf
from backbone import Backbone, BackboneConfig
from conformer import AudioEncoder, ConformerConfig
from tokenizer import Tokenizer, _BYTE

SYSTEM = "Perform ASR."

N_WORDS_MAX = 320
PRESETS = {
    # the trained model: encoder 4 × 128, backbone 4 layers × 128 (conv, attention, conv, attention)
    "asr-synthetic": dict(
        encoder=ConformerConfig(d_model=128, n_layer=4, n_head=4, n_ff=512, n_sub=32, n_adapter=256, n_embd_text=128,
                                batch_norm=True),
        backbone=BackboneConfig(n_vocab=0, n_embd=128, n_layer=4, attn_layers=[1, 3], n_head=4, n_head_kv=2,
                                n_ff=384)),
}
DEFAULT_PRESET = "asr-synthetic"


def build_vocab(base_gguf, words, out_path):
    """A GGUF holding only the tokenizer keys: base's tokens and merges, then for each word the
    token "Ġword" (GPT-2's byte alphabet, Ġ = space) and the merges joining base's pieces of it
    left to right (new tokens for the intermediate pieces too). The engine's pre-tokenizer keeps
    " word" as one piece and emits a piece that is a vocabulary entry whole, so each word is
    one token; the merges keep the vocabulary reachable by plain BPE as well."""
    base = Tokenizer(base_gguf)
    r = gguf.Reader(base_gguf)
    tokens = list(r.value("tokenizer.ggml.tokens"))
    types = list(r.value("tokenizer.ggml.token_type"))
    merges = list(r.value("tokenizer.ggml.merges"))
    have, have_m = set(tokens), set(merges)
    for w in words:
        ids = base._bpe(" " + w)
        syms = [base.tokens[i] for i in ids]
        acc = syms[0]
        for s in syms[1:]:
            m = acc + " " + s
            acc = acc + s
            if m not in have_m:
                merges.append(m)
                have_m.add(m)
            if acc not in have:
                tokens.append(acc)
                types.append(1)
                have.add(acc)
        assert acc == "".join(_BYTE[b] for b in (" " + w).encode()), w
    w = gguf.Writer()
    for k in ("tokenizer.ggml.model", "tokenizer.ggml.pre"):
        w.copy_kv(r, k)
    w.add_arr("tokenizer.ggml.tokens", gguf.STR, tokens)
    w.add_arr("tokenizer.ggml.token_type", gguf.I32, types)
    w.add_arr("tokenizer.ggml.merges", gguf.STR, merges)
    for k in ("tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id",
              "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", "tokenizer.chat_template"):
        w.copy_kv(r, k)
    w.write(out_path)
    return len(tokens)


def make_base_vocab(lfm2, out_dir):
    """The audio-tiny backbone of `lfm2 mkmodel` (its tokenizer is the base vocabulary)."""
    path = os.path.join(out_dir, "audio-tiny-base.gguf")
    if not os.path.exists(path):
        subprocess.run([lfm2, "mkmodel", "--config", "audio-tiny", "--type", "f32", "--seed", "0", "-o", path],
                       check=True, capture_output=True)
    return path


class ASRModel(nn.Module):
    def __init__(self, ecfg: ConformerConfig, bcfg: BackboneConfig, word_tokens):
        super().__init__()
        assert ecfg.n_embd_text == bcfg.n_embd
        self.encoder = AudioEncoder(ecfg)
        self.lm = Backbone(bcfg)
        # Training only (not exported). CTC over the closed vocabulary's words on the adapter
        # rows, its classifier TIED to the backbone's embeddings of the words' tokens (plus a
        # blank vector): the encoder learns where each word is and writes it in the direction
        # the backbone already reads as that word, so the decoder's job becomes copying the
        # non-blank rows in order.
        n = ecfg.n_embd_text
        self.register_buffer("word_tokens", torch.tensor(word_tokens, dtype=torch.long))
        self.ctc_blank = nn.Parameter(torch.zeros(n))
        self.ctc_bias = nn.Parameter(torch.zeros(len(word_tokens) + 1))

    def init_weights(self, seed):
        g = torch.Generator().manual_seed(seed)
        self.encoder.init_weights(g)
        self.lm.init_weights(g)
        self.ctc_blank.data.normal_(0.0, 0.02, generator=g)
        self.ctc_bias.data.zero_()

    def ctc_logits(self, rows):
        """rows [B, T', n] → [B, T', n_words + 1] (the last class is the blank)."""
        w = torch.cat([self.lm.embed.weight[self.word_tokens], self.ctc_blank[None]], 0)
        return rows @ w.t() + self.ctc_bias


def word_tokens(tok, words):
    """The one token of " word" for every word (build_vocab made each word one token)."""
    ids = []
    for w in words:
        t = tok.encode(" " + w)
        assert len(t) == 1, (w, t)
        ids.append(t[0])
    return ids


def build(preset, n_vocab, word_tokens_):
    p = PRESETS[preset]
    b = BackboneConfig(**{**p["backbone"].to_dict(), "n_vocab": n_vocab})
    return ASRModel(p["encoder"], b, word_tokens_)


class Prompt:
    """The token ids around the audio rows (as audio/prompt.c tokenizes them)."""

    def __init__(self, tok, system=SYSTEM):
        self.tok = tok
        self.prefix = tok.encode("<|im_start|>system\n%s<|im_end|>\n<|im_start|>user\n" % system, bos=True)
        self.suffix = tok.encode("<|im_end|>\n<|im_start|>assistant\n")
        self.eos = tok.lookup("<|im_end|>")

    def target(self, text):
        return (self.tok.encode(" " + text) if text else []) + [self.eos]

    def inputs(self, lm, rows, targets=None):
        """Input embeddings [B, P + T' + S (+ answer − 1), n_embd] and the index of the position
        whose output predicts the answer's first token."""
        B = rows.shape[0]
        pre = lm.embed(torch.tensor(self.prefix)).expand(B, -1, -1)
        suf = lm.embed(torch.tensor(self.suffix)).expand(B, -1, -1)
        parts = [pre, rows, suf]
        if targets is not None:
            parts.append(lm.embed(targets[:, :-1]))
        return torch.cat(parts, 1), len(self.prefix) + rows.shape[1] + len(self.suffix) - 1


@torch.no_grad()
def greedy(model, prompt, mel, max_tokens=40):
    """Greedy transcript of one clip (whole sequence recomputed per token: the model is tiny)."""
    rows = model.encoder(mel)
    x, _ = prompt.inputs(model.lm, rows)
    out = []
    for _ in range(max_tokens):
        nxt = int(model.lm.logits(model.lm.hidden(x)[0, -1]).argmax())
        if nxt == prompt.eos:
            break
        out.append(nxt)
        x = torch.cat([x, model.lm.embed(torch.tensor([[nxt]]))], 1)
    return prompt.tok.decode(out).strip()
