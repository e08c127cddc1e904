"""backbone.py — the LFM2 hybrid backbone in PyTorch, written from /work/shared/specs/lfm2-text.md
(§3) so that its tensors map one to one onto the GGUF names the engine reads (export.py).

    h = token_embd[ids] (or spliced input embeddings — images, later audio)
    per layer l:  h += ShortConv(RMSNorm(h)) if n_head_kv[l] == 0 else Attention(RMSNorm(h))
                  h += SwiGLU(RMSNorm(h))
    logits = RMSNorm(h, token_embd_norm) · token_embdᵀ           (tied output)

Shared by every LFM2 model this directory trains: the vision model (lfm2vl_model.py) feeds it
token embeddings with image rows spliced in; an audio model would splice encoder rows the same way.
"""
from dataclasses import dataclass, field, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class BackboneConfig:
    n_vocab: int = 613
    n_embd: int = 128
    n_layer: int = 6
    attn_layers: list = field(default_factory=lambda: [2, 5])
    n_head: int = 4
    n_head_kv: int = 2
    n_ff: int = 256
    eps: float = 1e-5
    rope_base: float = 1e6
    l_cache: int = 3
    context_length: int = 128000

    def to_dict(self):
        return asdict(self)


class RMSNorm(nn.Module):
    """y = w ⊙ x / sqrt(mean(x²) + eps) — plain w, no (1 + w)."""

    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


class ShortConv(nn.Module):
    """[B; C; X] = in_proj·u;  s = B ⊙ X;  conv_t = Σ_k w[k]·s_{t-2+k} (causal, depthwise);
    o = out_proj·(C ⊙ conv)."""

    def __init__(self, d, l_cache):
        super().__init__()
        self.in_proj = nn.Linear(d, 3 * d, bias=False)
        self.conv = nn.Parameter(torch.zeros(d, l_cache))   # row c: channel c's taps, oldest first
        self.out_proj = nn.Linear(d, d, bias=False)

    def forward(self, u):
        b, c, x = self.in_proj(u).chunk(3, dim=-1)
        s = (b * x).transpose(1, 2)                          # [batch, d, T]
        k = self.conv.shape[1]
        y = F.conv1d(s, self.conv.unsqueeze(1), padding=k - 1, groups=s.shape[1])[..., :s.shape[2]]
        return self.out_proj(c * y.transpose(1, 2))


_ROPE = {}


def rope_neox(x, base):
    """Rotate-half RoPE over the whole head at positions 0..T-1: pairs (x_i, x_{i+hd/2}),
    θ_i = p·base^(−2i/hd). x: [batch, T, heads, hd]."""
    T, hd = x.shape[1], x.shape[-1]
    key = (T, hd, base)
    if key not in _ROPE:
        inv = base ** (-torch.arange(0, hd // 2, dtype=torch.float64) * 2.0 / hd)
        ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]      # [T, hd/2]
        _ROPE[key] = (ang.cos().float()[None, :, None, :], ang.sin().float()[None, :, None, :])
    cos, sin = _ROPE[key]
    if x.dtype != cos.dtype:
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    x1, x2 = x[..., :hd // 2], x[..., hd // 2:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Attention(nn.Module):
    """GQA with per-head RMSNorm on q and k before NEOX RoPE; causal; scale 1/sqrt(hd)."""

    def __init__(self, cfg):
        super().__init__()
        d, hd = cfg.n_embd, cfg.n_embd // cfg.n_head
        self.n_head, self.n_kv, self.hd, self.base = cfg.n_head, cfg.n_head_kv, hd, cfg.rope_base
        self.q_proj = nn.Linear(d, cfg.n_head * hd, bias=False)
        self.k_proj = nn.Linear(d, cfg.n_head_kv * hd, bias=False)
        self.v_proj = nn.Linear(d, cfg.n_head_kv * hd, bias=False)
        self.out_proj = nn.Linear(cfg.n_head * hd, d, bias=False)
        self.q_norm = RMSNorm(hd, cfg.eps)
        self.k_norm = RMSNorm(hd, cfg.eps)

    def forward(self, u):
        bsz, T, _ = u.shape
        g = self.n_head // self.n_kv                      # query head h reads kv head h // g
        q = rope_neox(self.q_norm(self.q_proj(u).view(bsz, T, self.n_head, self.hd)), self.base)
        k = rope_neox(self.k_norm(self.k_proj(u).view(bsz, T, self.n_kv, self.hd)), self.base)
        v = self.v_proj(u).view(bsz, T, self.n_kv, self.hd)
        q = q.transpose(1, 2).reshape(bsz, self.n_kv, g * T, self.hd)   # a kv head's g query heads
        k, v = k.transpose(1, 2), v.transpose(1, 2)                    # [bsz, n_kv, T, hd]
        s = ((q @ k.transpose(-1, -2)) / self.hd ** 0.5).view(bsz, self.n_kv, g, T, T)
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        a = torch.softmax(s, dim=-1).view(bsz, self.n_kv, g * T, T) @ v
        return self.out_proj(a.view(bsz, self.n_head, T, self.hd).transpose(1, 2).reshape(bsz, T, -1))


class SwiGLU(nn.Module):
    """down · (silu(gate·v) ⊙ up·v)  (HF w1 = gate, w3 = up, w2 = down)."""

    def __init__(self, d, n_ff):
        super().__init__()
        self.gate = nn.Linear(d, n_ff, bias=False)
        self.up = nn.Linear(d, n_ff, bias=False)
        self.down = nn.Linear(n_ff, d, bias=False)

    def forward(self, v):
        return self.down(F.silu(self.gate(v)) * self.up(v))


class Block(nn.Module):
    def __init__(self, cfg, is_attn):
        super().__init__()
        self.is_attn = is_attn
        self.attn_norm = RMSNorm(cfg.n_embd, cfg.eps)
        self.op = Attention(cfg) if is_attn else ShortConv(cfg.n_embd, cfg.l_cache)
        self.ffn_norm = RMSNorm(cfg.n_embd, cfg.eps)
        self.ffn = SwiGLU(cfg.n_embd, cfg.n_ff)

    def forward(self, h):
        h = h + self.op(self.attn_norm(h))
        return h + self.ffn(self.ffn_norm(h))


class Backbone(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.n_vocab, cfg.n_embd)
        self.layers = nn.ModuleList(Block(cfg, l in cfg.attn_layers) for l in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.n_embd, cfg.eps)     # GGUF token_embd_norm: the FINAL norm

    def init_weights(self, gen, std=0.02):
        """Random init from a torch.Generator: matrices N(0, std²), norms 1, conv taps N(0, 0.3²)
        (the distributions of `lfm2 mkmodel`)."""
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):
                p.data.fill_(1.0)
            elif name.endswith("conv"):
                p.data.normal_(0.0, 0.3, generator=gen)
            else:
                p.data.normal_(0.0, std, generator=gen)

    def hidden(self, x):
        """x: input embeddings [batch, T, n_embd] → final-normed states [batch, T, n_embd]."""
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)

    def logits(self, h):
        return h @ self.embed.weight.t()

    def forward(self, x):
        return self.logits(self.hidden(x))

    def logits_for_ids(self, ids):
        return self.forward(self.embed(ids))
