"""checkpoint.py — model presets, and saving/loading training checkpoints (model, optimizer,
data-sampler position, RNG states), so a run interrupted at any point resumes where it stopped."""
import os

import torch

from backbone import BackboneConfig
from lfm2vl import LFM2VL
from vision import VisionConfig

# The shapes of the trained models. The backbone has vl-tiny's width, heads and 613-token
# vocabulary (the bundled vocabulary applies unchanged) with 4 layers (conv, attention, conv,
# attention): the training budget goes to the encoder.
PRESETS = {
    "vl-synthetic": dict(
        backbone=BackboneConfig(n_vocab=613, n_embd=128, n_layer=4, attn_layers=[1, 3], n_head=4, n_head_kv=2,
                                n_ff=256),
        vision=VisionConfig(n_embd=64, n_block=3, n_head=2, n_ff=192, n_proj=256, n_embd_text=128)),
    # mkmodel's vl-tiny shapes (the fixture pair's), for the parity test
    "vl-tiny": dict(
        backbone=BackboneConfig(n_vocab=613, n_embd=128, n_layer=6, attn_layers=[2, 5], n_head=4, n_head_kv=2,
                                n_ff=256),
        vision=VisionConfig(n_embd=64, n_block=2, n_head=2, n_ff=128, n_proj=128, n_embd_text=128)),
}


def build(preset):
    p = PRESETS[preset]
    return LFM2VL(p["backbone"], p["vision"])


def save(path, model, opt, meta, aux=None):
    tmp = path + ".tmp"
    torch.save({"model": model.state_dict(), "opt": opt.state_dict() if opt else None, "meta": meta, "aux": aux}, tmp)
    os.replace(tmp, path)   # never a half-written checkpoint


def load_model(path):
    ck = torch.load(path, map_location="cpu")
    model = build(ck["meta"]["preset"])
    model.load_state_dict(ck["model"])
    return model, ck["meta"]


def load(path):
    return torch.load(path, map_location="cpu")
