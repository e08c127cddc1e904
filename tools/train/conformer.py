"""conformer.py — LFM2-Audio's speech input in PyTorch: the official log-mel front-end, the
FastConformer encoder and the adapter (the `lfm2a` mmproj), written from
/work/shared/specs/lfm2-audio.md §1-2 so that every parameter maps one to one onto a GGUF
tensor of the published layout (export_audio.py; the C engine: audio/mel.c, audio/encoder.c).

    mel = log_mel(pcm)                                  [128][T], T = L/160 + 1 (10 ms hop)
    x   = pre_encode(mel)                               3 stride-2 convolutions: T' = ceil(T/8)
    per layer:  x += ½·FFN1(LN(x));  x += MHSA_rel(LN(x));  x += Conv(LN(x));
                x += ½·FFN2(LN(x));  x = LN_out(x)
    rows = W3·GELU_erf(W1·LN(x) + b1) + b3              [T'][n_embd of the backbone]

The batch norm of the convolution module is trained as what the file stores: the folded
per-channel scale and shift (no running statistics), so the export is exact.
"""
import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

SAMPLE_RATE, N_FFT, HOP, WINDOW, N_MEL = 16000, 512, 160, 400, 128
LOG_GUARD = 2.0 ** -24
BN_EPS = 1e-5            # the convolution module's batch norm (NeMo's default)
POS_WIDTH = 512          # linear_pos's input: llama.cpp's 512-wide sinusoid table (mkmodel's W)


# ---- the official log-mel front-end (NeMo AudioToMelSpectrogramPreprocessor, eval) -------------

def _hz_to_mel(f):
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    logstep = math.log(6.4) / 27.0
    return min_log_hz / f_sp + math.log(f / min_log_hz) / logstep if f >= min_log_hz else f / f_sp


def _mel_to_hz(m):
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return min_log_hz * math.exp(logstep * (m - min_log_mel)) if m >= min_log_mel else f_sp * m


_FB = {}


def filterbank(dtype=torch.float32):
    """librosa.filters.mel(sr=16000, n_fft=512, n_mels=128, norm="slaney") [128][257], computed in
    double and stored as float32 (as NeMo and the engine hold it)."""
    if dtype not in _FB:
        n_bins = N_FFT // 2 + 1
        mel_max = _hz_to_mel(SAMPLE_RATE / 2.0)
        f = [_mel_to_hz(mel_max * i / (N_MEL + 1)) for i in range(N_MEL + 2)]
        fb = torch.zeros(N_MEL, n_bins, dtype=torch.float64)
        for i in range(N_MEL):
            enorm = 2.0 / (f[i + 2] - f[i])
            for k in range(n_bins):
                fk = k * SAMPLE_RATE / N_FFT
                w = min((fk - f[i]) / (f[i + 1] - f[i]), (f[i + 2] - fk) / (f[i + 2] - f[i + 1]))
                fb[i, k] = w * enorm if w > 0 else 0.0
        _FB[dtype] = fb.float().to(dtype)
    return _FB[dtype]


def n_frames(n_samples):
    return n_samples // HOP + 1


def n_tokens(n_frames_):
    t = n_frames_
    for _ in range(3):
        t = (t + 1) // 2
    return t


def formant_warp(alpha, dtype=torch.float32):
    """[B, 257, 257] maps M with (M·P)[k] = P(k/α) by linear interpolation: every frequency of
    a power spectrum P scaled by α (vocal-tract-length perturbation: formants move, the tempo
    does not; bins past the top of P are 0)."""
    k = torch.arange(N_FFT // 2 + 1, dtype=torch.float64)
    src = k[None] / torch.as_tensor(alpha, dtype=torch.float64)[:, None]        # [B, 257]
    lo = src.floor().long()
    frac = src - lo
    M = torch.zeros(len(src), len(k), len(k), dtype=torch.float64)
    for off, wgt in ((0, 1 - frac), (1, frac)):
        j = lo + off
        ok = j <= N_FFT // 2
        b, r = ok.nonzero(as_tuple=True)
        M[b, r, j[b, r]] += wgt[b, r]
    return M.to(dtype)


def log_mel(pcm, dtype=torch.float32, warp=None):
    """pcm [B, L] (or [L]) in [-1, 1] at 16 kHz → normalized log-mel [B, 128, T]:
    pre-emphasis 0.97, 256 zeros each side, symmetric Hann(400) centred in 512, |FFT|², Slaney
    filterbank, ln(· + 2^-24), per-bin (x − μ)/(σ + 1e-5) over the first L/160 frames (unbiased
    σ), the frames after them 0. warp [B] (training only): formant_warp's factor per clip
    applied to the power spectrum before the filterbank."""
    x = pcm.to(dtype)
    if x.dim() == 1:
        x = x[None]
    B, L = x.shape
    T, N = n_frames(L), L // HOP
    y = torch.cat([x[:, :1], x[:, 1:] - 0.97 * x[:, :-1]], 1)
    y = F.pad(y, (N_FFT // 2, N_FFT // 2))
    frames = y.unfold(1, N_FFT, HOP)[:, :T]                                    # [B, T, 512]
    n = torch.arange(WINDOW, dtype=torch.float64)
    w = torch.zeros(N_FFT, dtype=torch.float64)
    w[(N_FFT - WINDOW) // 2:(N_FFT + WINDOW) // 2] = 0.5 - 0.5 * torch.cos(2 * math.pi * n / (WINDOW - 1))
    spec = torch.fft.rfft(frames * w.to(dtype), dim=-1)
    power = spec.real ** 2 + spec.imag ** 2                                    # [B, T, 257]
    if warp is None:
        mel = torch.log(power @ filterbank(dtype).t() + LOG_GUARD).transpose(1, 2)  # [B, 128, T]
    else:
        fb = filterbank(dtype) @ formant_warp(warp, dtype)                       # [B, 128, 257]
        mel = torch.log(power @ fb.transpose(1, 2) + LOG_GUARD).transpose(1, 2)
    out = torch.zeros_like(mel)
    if N >= 2:
        head = mel[:, :, :N]
        mu = head.mean(-1, keepdim=True)
        sd = ((head - mu) ** 2).sum(-1, keepdim=True).div(N - 1).sqrt()
        out[:, :, :N] = (head - mu) / (sd + 1e-5)
    return out


# ---- encoder -----------------------------------------------------------------------------------

@dataclass
class ConformerConfig:
    d_model: int = 64
    n_layer: int = 2
    n_head: int = 4
    n_ff: int = 256
    n_sub: int = 16          # subsampling channels
    n_adapter: int = 128     # adapter hidden width
    n_embd_text: int = 128   # adapter output = the backbone's n_embd
    conv_kernel: int = 9
    n_pos_rows: int = 2048   # rows of a.position_embd (the output-audio table the file carries)
    eps: float = 1e-5
    batch_norm: bool = False  # train the convolution module's batch norm with batch statistics

    def to_dict(self):
        return asdict(self)


_PTAB = {}


def position_table(Tq, dtype):
    """P [2T'−1][512]: row m ↔ offset r = T'−1−m; P[m][2i] = sin(r·ω_i), P[m][2i+1] = cos(r·ω_i),
    ω_i = exp(2i·(−ln(10000)/512)), in NeMo's float32 arithmetic (the engine's OFFICIAL table)."""
    key = (Tq, dtype)
    if key not in _PTAB:
        i2 = torch.arange(0, POS_WIDTH, 2, dtype=torch.float32)
        w = torch.exp(i2 * torch.tensor(-(math.log(10000.0) / POS_WIDTH), dtype=torch.float32))
        r = torch.arange(Tq - 1, -Tq, -1, dtype=torch.float32)
        ang = r[:, None] * w[None, :]
        P = torch.stack([torch.sin(ang), torch.cos(ang)], -1).reshape(2 * Tq - 1, POS_WIDTH)
        _PTAB[key] = P.to(dtype)
    return _PTAB[key]


class Subsampling(nn.Module):
    """dw_striding ×8: conv 3×3/2 (1 → C), ReLU, [depthwise 3×3/2, pointwise 1×1, ReLU] × 2 over
    the mel viewed as an image [time][freq]; flatten channel-major → Linear (C·16 → d_model)."""

    def __init__(self, cfg):
        super().__init__()
        C = cfg.n_sub
        self.conv0 = nn.Conv2d(1, C, 3, 2, 1)
        self.dw2 = nn.Conv2d(C, C, 3, 2, 1, groups=C)
        self.pw3 = nn.Conv2d(C, C, 1)
        self.dw5 = nn.Conv2d(C, C, 3, 2, 1, groups=C)
        self.pw6 = nn.Conv2d(C, C, 1)
        self.out = nn.Linear(C * 16, cfg.d_model)

    def forward(self, mel):                                   # [B, 128, T]
        s = F.relu(self.conv0(mel.transpose(1, 2).unsqueeze(1)))
        s = F.relu(self.pw3(self.dw2(s)))
        s = F.relu(self.pw6(self.dw5(s)))                     # [B, C, T', 16]
        B, C, Tq, Fq = s.shape
        return self.out(s.permute(0, 2, 1, 3).reshape(B, Tq, C * Fq))


class FFN(nn.Module):
    def __init__(self, d, n_ff, eps):
        super().__init__()
        self.norm = nn.LayerNorm(d, eps=eps)
        self.up = nn.Linear(d, n_ff)
        self.down = nn.Linear(n_ff, d)

    def forward(self, x):
        return self.down(F.silu(self.up(self.norm(x))))


class RelAttention(nn.Module):
    """Transformer-XL attention, head h: score[i][j] = ((q_i + u_h)·k_j + (q_i + v_h)·p_{T'−1−i+j})
    / sqrt(d_head), p = Wpos·P (no bias), softmax over j (one utterance, no mask)."""

    def __init__(self, cfg):
        super().__init__()
        D = cfg.d_model
        self.n_head, self.dh = cfg.n_head, D // cfg.n_head
        self.norm = nn.LayerNorm(D, eps=cfg.eps)
        self.q, self.k, self.v, self.o = (nn.Linear(D, D) for _ in range(4))
        self.pos = nn.Linear(POS_WIDTH, D, bias=False)
        self.u = nn.Parameter(torch.zeros(cfg.n_head, self.dh))
        self.vb = nn.Parameter(torch.zeros(cfg.n_head, self.dh))

    def forward(self, x):
        B, Tq, D = x.shape
        H, dh = self.n_head, self.dh
        z = self.norm(x)
        q = self.q(z).view(B, Tq, H, dh)
        k = self.k(z).view(B, Tq, H, dh).transpose(1, 2)
        v = self.v(z).view(B, Tq, H, dh).transpose(1, 2)
        p = self.pos(position_table(Tq, x.dtype)).view(2 * Tq - 1, H, dh).permute(1, 2, 0)   # [H, dh, 2T'-1]
        ac = (q + self.u).transpose(1, 2) @ k.transpose(-1, -2)                              # [B, H, T', T']
        bd_raw = (q + self.vb).transpose(1, 2) @ p                                           # [B, H, T', 2T'-1]
        i = torch.arange(Tq)
        idx = (Tq - 1 - i[:, None] + i[None, :]).expand(B, H, Tq, Tq)
        bd = bd_raw.gather(-1, idx)
        a = torch.softmax((ac + bd) / math.sqrt(dh), -1) @ v                                 # [B, H, T', dh]
        return self.o(a.transpose(1, 2).reshape(B, Tq, D))


class ConvModule(nn.Module):
    """pw1 (D → 2D) → GLU a·σ(b) → depthwise conv k (zero pad) → batch norm (the file's folded
    scale and shift) → SiLU → pw2.

    With cfg.batch_norm the batch norm trains as NeMo's does (batch statistics over every row of
    the batch, running averages for inference), which the conformer needs to learn quickly;
    folded() turns it into the file's scale and shift, exactly. Without it, the scale and shift
    are the parameters themselves (the parity test's random models)."""

    def __init__(self, cfg):
        super().__init__()
        D, K = cfg.d_model, cfg.conv_kernel
        self.batch_norm = cfg.batch_norm
        self.norm = nn.LayerNorm(D, eps=cfg.eps)
        self.pw1 = nn.Linear(D, 2 * D)
        self.dw = nn.Conv1d(D, D, K, padding=K // 2, groups=D)
        self.bn_w = nn.Parameter(torch.ones(D))
        self.bn_b = nn.Parameter(torch.zeros(D))
        if self.batch_norm:
            self.register_buffer("bn_mean", torch.zeros(D))
            self.register_buffer("bn_var", torch.ones(D))
        self.pw2 = nn.Linear(D, D)

    def folded(self):
        """(scale, shift) with BN(g) = g·scale + shift at inference."""
        if not self.batch_norm:
            return self.bn_w, self.bn_b
        scale = self.bn_w / torch.sqrt(self.bn_var + BN_EPS)
        return scale, self.bn_b - self.bn_mean * scale

    def forward(self, x):
        D = x.shape[-1]
        g = self.pw1(self.norm(x))
        g = g[..., :D] * torch.sigmoid(g[..., D:])
        g = self.dw(g.transpose(1, 2)).transpose(1, 2)
        if self.batch_norm and self.training:
            g = F.batch_norm(g.reshape(-1, D), self.bn_mean, self.bn_var, self.bn_w, self.bn_b, True, 0.1,
                             BN_EPS).view_as(g)
        else:
            scale, shift = self.folded()
            g = g * scale + shift
        return self.pw2(F.silu(g))


class ConformerLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ff1 = FFN(cfg.d_model, cfg.n_ff, cfg.eps)
        self.att = RelAttention(cfg)
        self.conv = ConvModule(cfg)
        self.ff2 = FFN(cfg.d_model, cfg.n_ff, cfg.eps)
        self.norm_out = nn.LayerNorm(cfg.d_model, eps=cfg.eps)

    def forward(self, x):
        x = x + 0.5 * self.ff1(x)
        x = x + self.att(x)
        x = x + self.conv(x)
        x = x + 0.5 * self.ff2(x)
        return self.norm_out(x)


class AudioEncoder(nn.Module):
    """mel [B, 128, T] → adapter rows [B, T', n_embd_text]."""

    def __init__(self, cfg: ConformerConfig):
        super().__init__()
        self.cfg = cfg
        self.sub = Subsampling(cfg)
        self.layers = nn.ModuleList(ConformerLayer(cfg) for _ in range(cfg.n_layer))
        self.ad_norm = nn.LayerNorm(cfg.d_model, eps=1e-5)
        self.ad1 = nn.Linear(cfg.d_model, cfg.n_adapter)
        self.ad3 = nn.Linear(cfg.n_adapter, cfg.n_embd_text)
        # LFM2-Audio's output-audio embedding rides along in the mmproj (llama.cpp requires
        # a.position_embd); speech input never reads it: kept as buffers, exported as stored
        self.register_buffer("pos_embd", torch.zeros(cfg.n_pos_rows, cfg.n_embd_text))
        self.register_buffer("pos_embd_norm", torch.ones(cfg.n_embd_text))
        self.register_buffer("embd_to_logits", torch.zeros(cfg.n_pos_rows, cfg.n_embd_text))

    def init_weights(self, gen):
        """The distributions of `lfm2 mkmodel` (tools/mkmodel-audio.c): matrices N(0, 1/fan_in)
        (×1.4 for the pointwise convolutions and pre_encode.out, sqrt(2/512) for linear_pos),
        norms and the folded batch-norm scale 1 + N(0, 0.1), biases N(0, 0.05), u and v
        N(0, 0.3): every stage's activations stay O(1)."""
        cfg = self.cfg
        D, C = cfg.d_model, cfg.n_sub

        def nrm(t, mean, std):
            t.data.normal_(0.0, std, generator=gen).add_(mean)

        for name, p in self.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            mod = name.rsplit(".", 1)[0] if "." in name else ""
            if name.startswith("sub."):
                if leaf == "bias":
                    nrm(p, 0, 0.05)
                elif mod in ("sub.conv0", "sub.dw2", "sub.dw5"):
                    nrm(p, 0, 1.0 / 3.0)
                elif mod in ("sub.pw3", "sub.pw6"):
                    nrm(p, 0, 1.4 / math.sqrt(C))
                else:   # out
                    nrm(p, 0, 1.4 / math.sqrt(C * 16))
            elif leaf in ("u", "vb"):
                nrm(p, 0, 0.3)
            elif leaf == "bn_w" or (isinstance(self.get_submodule(mod), nn.LayerNorm) and leaf == "weight"):
                nrm(p, 1, 0.1)
            elif leaf == "bn_b":
                nrm(p, 0, 0.1)
            elif leaf == "bias":
                nrm(p, 0, 0.05)
            elif mod.endswith("att.pos"):
                nrm(p, 0, math.sqrt(2.0 / POS_WIDTH))
            elif mod.endswith("conv.dw"):
                nrm(p, 0, 1.0 / math.sqrt(cfg.conv_kernel))
            elif mod.endswith("conv.pw1") or mod.endswith("conv.pw2"):
                nrm(p, 0, 1.4 / math.sqrt(D))
            else:
                nrm(p, 0, 1.0 / math.sqrt(p.shape[1]))
        nrm(self.pos_embd, 0, 1.0)
        nrm(self.pos_embd_norm, 1, 0.1)
        nrm(self.embd_to_logits, 0, 1.0 / math.sqrt(cfg.n_embd_text))

    def encode(self, mel):
        x = self.sub(mel)
        for layer in self.layers:
            x = layer(x)
        return x

    def adapter(self, x):
        return self.ad3(F.gelu(self.ad1(self.ad_norm(x))))

    def forward(self, mel):
        return self.adapter(self.encode(mel))
