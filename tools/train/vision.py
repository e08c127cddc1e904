"""vision.py — LFM2-VL's image side in PyTorch, written from /work/shared/specs/lfm2-vl.md:
the preprocessing plan and pixels of the transformers processor (the engine's default OFFICIAL
mode, docs/vision.md), the SigLIP2 NaFlex encoder and the pixel-unshuffle projector.

    RGB u8 ─plan─► 512² tiles (row-major) + thumbnail, or one smart-resized image
    each chunk: (u/255 − 0.5)/0.5 ─ conv 16×16/16 + bias ─ + positions (16×16 table,
      antialiased bilinear to the patch grid) ─ L × pre-LN block ─ post-LN
      ─ pixel-unshuffle ×2 ─ LN (eps 1e-5) ─ mm.1 ─ GELU (erf) ─ mm.2 ─► (h/32)(w/32) × n_embd
"""
import math
from dataclasses import dataclass, asdict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PATCH, MERGE, TILE = 16, 2, 512


@dataclass
class VisionConfig:
    n_embd: int = 64          # D (clip.vision.embedding_length)
    n_block: int = 2
    n_head: int = 2
    n_ff: int = 128
    n_proj: int = 256         # projector hidden width P (mm.1 rows)
    n_embd_text: int = 128    # E: the backbone's n_embd (mm.2 rows)
    n_pos_side: int = 16      # learned position table: side × side
    eps: float = 1e-6

    def to_dict(self):
        return asdict(self)


# ---- preprocessing (transformers' Lfm2VlImageProcessor = the engine's OFFICIAL mode) ----------

@dataclass
class Plan:
    src_w: int
    src_h: int
    tiled: bool
    cols: int
    rows: int
    thumb_w: int       # the single image, or the thumbnail after the tiles
    thumb_h: int

    @property
    def n_tiles(self):
        return self.cols * self.rows

    def chunk_sizes(self):
        return [(TILE, TILE)] * self.n_tiles + [(self.thumb_w, self.thumb_h)]

    @property
    def n_tokens(self):
        return sum((w // 32) * (h // 32) for w, h in self.chunk_sizes())


def smart_resize(w, h, min_tokens=64, max_tokens=256):
    """Multiples of 32 near (w, h) with min..max tokens; Python round (half to even)."""
    a = PATCH * MERGE
    min_px, max_px = min_tokens * a * a, max_tokens * a * a
    hb, wb = max(a, round(h / a) * a), max(a, round(w / a) * a)
    if hb * wb > max_px:
        beta = math.sqrt(w * h / max_px)
        hb, wb = max(a, math.floor(h / beta / a) * a), max(a, math.floor(w / beta / a) * a)
    elif hb * wb < min_px:
        beta = math.sqrt(min_px / (w * h))
        hb, wb = math.ceil(h * beta / a) * a, math.ceil(w * beta / a) * a
    return wb, hb


def _grid(w, h, min_tiles=2, max_tiles=10):
    cands = []
    for n in range(min_tiles, max_tiles + 1):
        for gw in range(1, n + 1):
            for gh in range(1, n + 1):
                if min_tiles <= gw * gh <= max_tiles and (gw, gh) not in cands:
                    cands.append((gw, gh))
    cands.sort(key=lambda g: g[0] * g[1])          # stable: insertion order inside an area
    aspect, best, best_diff = w / h, (1, 1), float("inf")
    for gw, gh in cands:
        diff = abs(aspect - gw / gh)
        if diff < best_diff:
            best, best_diff = (gw, gh), diff
        elif diff == best_diff and w * h > 0.5 * TILE * TILE * gw * gh:
            best = (gw, gh)
    return best


def make_plan(w, h, min_tokens=64, max_tokens=256, tolerance=2.0):
    tw, th = smart_resize(w, h, min_tokens, max_tokens)
    a = PATCH * MERGE
    hb, wb = max(PATCH, round(h / a) * a), max(PATCH, round(w / a) * a)
    if hb * wb > max_tokens * a * a * tolerance:
        gw, gh = _grid(w, h)
        return Plan(w, h, True, gw, gh, tw, th)
    return Plan(w, h, False, 0, 0, tw, th)


def _resize(img, w, h):
    """PIL's antialiased bilinear — what the engine's OFFICIAL resampler reproduces."""
    from PIL import Image
    if img.size == (w, h):
        return img
    return img.resize((w, h), Image.BILINEAR)


def chunk_pixels(img, plan):
    """The plan's chunks as uint8 arrays [h, w, 3]: tiles of the picture stretched to the grid
    (row-major), then the thumbnail / single image. img: a PIL RGB image."""
    out = []
    if plan.tiled:
        big = np.asarray(_resize(img, TILE * plan.cols, TILE * plan.rows))
        for r in range(plan.rows):
            for c in range(plan.cols):
                out.append(big[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE])
    out.append(np.asarray(_resize(img, plan.thumb_w, plan.thumb_h)))
    return out


def layout(tok, plan):
    """The image's token layout: ids, with -1 for each embedding row (lfm2_vision_layout)."""
    ids = [tok.lookup("<|image_start|>")]
    for i in range(plan.n_tiles):
        ids.append(tok.lookup("<|img_row_%d_col_%d|>" % (i // plan.cols + 1, i % plan.cols + 1)))
        ids += [-1] * ((TILE // 32) ** 2)
    if plan.tiled:
        ids.append(tok.lookup("<|img_thumbnail|>"))
    ids += [-1] * ((plan.thumb_w // 32) * (plan.thumb_h // 32))
    ids.append(tok.lookup("<|image_end|>"))
    return ids


def to_input(chunks):
    """uint8 [n, h, w, 3] (equal sizes) → normalized float [n, 3, h, w]: (u/255 − 0.5)/0.5."""
    x = torch.from_numpy(np.ascontiguousarray(np.stack(chunks))).float()
    return (x.permute(0, 3, 1, 2) / 255.0 - 0.5) / 0.5


# ---- encoder and projector -----------------------------------------------------------------

class EncoderBlock(nn.Module):
    """x += Wo·attn(LN1 x);  x += fc2·gelu_tanh(fc1·LN2 x)   (full bidirectional attention)."""

    def __init__(self, cfg):
        super().__init__()
        D = cfg.n_embd
        self.n_head = cfg.n_head
        self.ln1 = nn.LayerNorm(D, eps=cfg.eps)
        self.q = nn.Linear(D, D)
        self.k = nn.Linear(D, D)
        self.v = nn.Linear(D, D)
        self.o = nn.Linear(D, D)
        self.ln2 = nn.LayerNorm(D, eps=cfg.eps)
        self.fc1 = nn.Linear(D, cfg.n_ff)
        self.fc2 = nn.Linear(cfg.n_ff, D)

    def forward(self, x):
        b, n, D = x.shape
        hd = D // self.n_head
        a = self.ln1(x)
        q, k, v = (p(a).view(b, n, self.n_head, hd).transpose(1, 2) for p in (self.q, self.k, self.v))
        att = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(hd), dim=-1) @ v
        x = x + self.o(att.transpose(1, 2).reshape(b, n, D))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))


class VisionEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        D = cfg.n_embd
        self.patch = nn.Conv2d(3, D, PATCH, stride=PATCH)          # weight [D][3][16][16] = OIHW
        self.pos = nn.Parameter(torch.zeros(cfg.n_pos_side ** 2, D))   # row = gy·side + gx
        self.blocks = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.n_block))
        self.post_ln = nn.LayerNorm(D, eps=cfg.eps)
        self.proj_ln = nn.LayerNorm(4 * D, eps=1e-5)
        self.mm1 = nn.Linear(4 * D, cfg.n_proj)
        self.mm2 = nn.Linear(cfg.n_proj, cfg.n_embd_text)

    def init_weights(self, gen):
        """mkmodel's distributions: matrices N(0, 0.05²), biases N(0, 0.02²), LN weights
        1 + N(0, 0.1²), positions N(0, 0.1²)."""
        for name, p in self.named_parameters():
            if name == "pos":
                p.data.normal_(0.0, 0.1, generator=gen)
            elif "ln" in name and name.endswith("weight"):
                p.data.normal_(0.0, 0.1, generator=gen).add_(1.0)
            elif name.endswith("bias"):
                p.data.normal_(0.0, 0.02, generator=gen)
            else:
                p.data.normal_(0.0, 0.05, generator=gen)

    def init_patch_edges(self, scale=1.0):
        """Starts the patch kernel from a small filter bank instead of noise: the mean of each
        colour channel and of the luminance, then luminance step edges at four orientations and
        four offsets from the patch centre (filters 4..19); the other filters keep their random
        values. Shapes are told apart by their edges, which a random kernel has to discover
        first. Training only; still an ordinary parameter."""
        D = self.cfg.n_embd
        with torch.no_grad():
            w = self.patch.weight                                   # [D, 3, 16, 16]
            n = PATCH * PATCH
            for c in range(3):
                w[c].zero_()
                w[c, c] = scale * 4.0 / n
            w[3] = scale * 4.0 / (3 * n)
            yy, xx = torch.meshgrid(torch.arange(PATCH) - 7.5, torch.arange(PATCH) - 7.5, indexing="ij")
            k = 4
            for theta in (0.0, 45.0, 90.0, 135.0):
                t = math.radians(theta)
                proj = xx * math.cos(t) + yy * math.sin(t)
                for off in (-5.0, -1.5, 1.5, 5.0):
                    if k >= D:
                        return
                    step = torch.tanh(proj - off)
                    step = step - step.mean()
                    f = scale * step / step.norm() * 2.0
                    w[k] = (f / 3.0).unsqueeze(0).expand(3, PATCH, PATCH)
                    k += 1

    def init_positions_sincos(self, scale=0.5):
        """Starts the learned position table from a 2-D sine/cosine code (half the channels for
        the row, half for the column): the encoder sees where its patches are from the first
        step instead of learning it from noise. Training only; still an ordinary parameter."""
        S, D = self.cfg.n_pos_side, self.cfg.n_embd
        q = D // 4
        freq = 1.0 / (100.0 ** (torch.arange(q, dtype=torch.float64) / max(q - 1, 1)))
        g = torch.arange(S, dtype=torch.float64)
        ang = g[:, None] * freq[None, :] * (math.pi / 2)                  # [S, q]
        code = torch.cat([ang.sin(), ang.cos()], 1)                          # [S, 2q]
        gy = code[:, None, :].expand(S, S, 2 * q)
        gx = code[None, :, :].expand(S, S, 2 * q)
        table = torch.cat([gy, gx], -1).reshape(S * S, 4 * q)
        with torch.no_grad():
            self.pos.zero_()
            self.pos[:, :4 * q] = (scale * table).float()

    def positions(self, gh, gw):
        S = self.cfg.n_pos_side
        if (gh, gw) == (S, S):
            return self.pos
        t = self.pos.view(S, S, -1).permute(2, 0, 1).unsqueeze(0)
        t = F.interpolate(t, size=(gh, gw), mode="bilinear", align_corners=False, antialias=True)
        return t[0].permute(1, 2, 0).reshape(gh * gw, -1)

    def forward(self, pix):
        """pix: normalized [n, 3, h, w] (one size) → embeddings [n, (h/32)(w/32), n_embd_text]."""
        n, _, h, w = pix.shape
        gh, gw = h // PATCH, w // PATCH
        x = self.patch(pix).flatten(2).transpose(1, 2) + self.positions(gh, gw)
        for blk in self.blocks:
            x = blk(x)
        x = self.post_ln(x)
        D = x.shape[-1]
        # pixel unshuffle: z[Y·(gw/2)+X][dy·2D + dx·D + c] = x[2Y+dy][2X+dx][c]
        z = x.view(n, gh // 2, 2, gw // 2, 2, D).permute(0, 1, 3, 2, 4, 5).reshape(n, -1, 4 * D)
        return self.mm2(F.gelu(self.mm1(self.proj_ln(z))))
