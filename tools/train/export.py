#!/usr/bin/python3
"""export.py — writes trained (or random) PyTorch models as GGUF files in the published layout:
the same keys in the same order, tensor names, shapes, order and types that llama.cpp's
converter writes and `lfm2 mkmodel` reproduces (tools/mkmodel.c: set_backbone_keys,
plan_backbone, set_mmproj_keys, plan_mmproj). The tokenizer keys are copied verbatim from an
existing GGUF (by default the bundled LFM2-VL tiny backbone), so its vocabulary and merges are
exactly the ones the engine and llama.cpp already read.

    /usr/bin/python3 tools/train/export.py CHECKPOINT.pt --text OUT.gguf --mmproj OUT-mmproj.gguf [--type f32|f16]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf  # noqa: E402

from tokenizer import DEFAULT_VOCAB  # noqa: E402
TOKENIZER_KEYS = [
    "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.padding_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token",
    "tokenizer.chat_template",
]
FILE_TYPE = {"f32": 0, "f16": 1}   # llama_ftype ALL_F32 / MOSTLY_F16


def _np(t):
    return t.detach().cpu().float().numpy()


def write_backbone(path, lm, vocab_path, name, size_label, ftype="f32"):
    """The LFM2 text model (architecture lfm2). Matrices in ftype, norms and conv taps F32."""
    cfg = lm.cfg
    voc = gguf.Reader(vocab_path)
    n_vocab = len(voc.value("tokenizer.ggml.tokens"))
    if n_vocab != cfg.n_vocab:
        raise ValueError("%s has %d tokens but the model has n_vocab %d" % (vocab_path, n_vocab, cfg.n_vocab))
    w = gguf.Writer()
    w.add_str("general.architecture", "lfm2")
    w.add_str("general.type", "model")
    w.add_str("general.name", name)
    w.add_str("general.size_label", size_label)
    w.add_u32("general.file_type", FILE_TYPE[ftype])
    w.add_u32("general.quantization_version", 2)
    w.add_u32("lfm2.block_count", cfg.n_layer)
    w.add_u32("lfm2.context_length", cfg.context_length)
    w.add_u32("lfm2.embedding_length", cfg.n_embd)
    w.add_u32("lfm2.feed_forward_length", cfg.n_ff)
    w.add_u32("lfm2.attention.head_count", cfg.n_head)
    w.add_arr("lfm2.attention.head_count_kv", gguf.I32,
              [cfg.n_head_kv if l in cfg.attn_layers else 0 for l in range(cfg.n_layer)])
    w.add_f32("lfm2.rope.freq_base", cfg.rope_base)
    w.add_f32("lfm2.attention.layer_norm_rms_epsilon", cfg.eps)
    w.add_u32("lfm2.vocab_size", cfg.n_vocab)
    w.add_u32("lfm2.shortconv.l_cache", cfg.l_cache)
    for k in TOKENIZER_KEYS:
        w.copy_kv(voc, k)

    mt = gguf.F32 if ftype == "f32" else gguf.F16
    w.add_tensor("token_embd.weight", _np(lm.embed.weight), mt)
    for l, layer in enumerate(lm.layers):
        p = "blk.%d." % l
        op = layer.op
        if layer.is_attn:
            w.add_tensor(p + "attn_q.weight", _np(op.q_proj.weight), mt)
            w.add_tensor(p + "attn_k.weight", _np(op.k_proj.weight), mt)
            w.add_tensor(p + "attn_v.weight", _np(op.v_proj.weight), mt)
            w.add_tensor(p + "attn_output.weight", _np(op.out_proj.weight), mt)
            w.add_tensor(p + "attn_q_norm.weight", _np(op.q_norm.weight))
            w.add_tensor(p + "attn_k_norm.weight", _np(op.k_norm.weight))
        else:
            w.add_tensor(p + "shortconv.conv.weight", _np(op.conv))
            w.add_tensor(p + "shortconv.in_proj.weight", _np(op.in_proj.weight), mt)
            w.add_tensor(p + "shortconv.out_proj.weight", _np(op.out_proj.weight), mt)
        w.add_tensor(p + "attn_norm.weight", _np(layer.attn_norm.weight))
        w.add_tensor(p + "ffn_gate.weight", _np(layer.ffn.gate.weight), mt)
        w.add_tensor(p + "ffn_up.weight", _np(layer.ffn.up.weight), mt)
        w.add_tensor(p + "ffn_down.weight", _np(layer.ffn.down.weight), mt)
        w.add_tensor(p + "ffn_norm.weight", _np(layer.ffn_norm.weight))
    w.add_tensor("token_embd_norm.weight", _np(lm.norm.weight))
    w.write(path)


def write_mmproj(path, enc, name, ftype="f32"):
    """The LFM2-VL projector file (architecture clip): SigLIP2 tower + LFM2 projector."""
    cfg = enc.cfg
    w = gguf.Writer()
    w.add_str("general.architecture", "clip")
    w.add_str("general.type", "mmproj")
    w.add_str("general.name", name)
    w.add_u32("general.file_type", FILE_TYPE[ftype])
    w.add_bool("clip.has_vision_encoder", True)
    w.add_str("clip.projector_type", "lfm2")
    w.add_bool("clip.use_gelu", True)
    w.add_u32("clip.vision.image_size", 256)
    w.add_u32("clip.vision.patch_size", 16)
    w.add_u32("clip.vision.embedding_length", cfg.n_embd)
    w.add_u32("clip.vision.feed_forward_length", cfg.n_ff)
    w.add_u32("clip.vision.block_count", cfg.n_block)
    w.add_u32("clip.vision.projection_dim", cfg.n_embd_text)
    w.add_u32("clip.vision.attention.head_count", cfg.n_head)
    w.add_f32("clip.vision.attention.layer_norm_epsilon", cfg.eps)
    w.add_arr("clip.vision.image_mean", gguf.F32V, [0.5, 0.5, 0.5])
    w.add_arr("clip.vision.image_std", gguf.F32V, [0.5, 0.5, 0.5])
    w.add_u32("clip.vision.projector.scale_factor", 2)

    mt = gguf.F32 if ftype == "f32" else gguf.F16
    w.add_tensor("v.patch_embd.weight", _np(enc.patch.weight), mt)
    w.add_tensor("v.patch_embd.bias", _np(enc.patch.bias))
    w.add_tensor("v.position_embd.weight", _np(enc.pos))
    for i, b in enumerate(enc.blocks):
        p = "v.blk.%d." % i
        for gname, lin in (("attn_q", b.q), ("attn_k", b.k), ("attn_v", b.v), ("attn_out", b.o)):
            w.add_tensor(p + gname + ".weight", _np(lin.weight), mt)
            w.add_tensor(p + gname + ".bias", _np(lin.bias))
        w.add_tensor(p + "ln1.weight", _np(b.ln1.weight))
        w.add_tensor(p + "ln1.bias", _np(b.ln1.bias))
        w.add_tensor(p + "ffn_up.weight", _np(b.fc1.weight), mt)
        w.add_tensor(p + "ffn_up.bias", _np(b.fc1.bias))
        w.add_tensor(p + "ffn_down.weight", _np(b.fc2.weight), mt)
        w.add_tensor(p + "ffn_down.bias", _np(b.fc2.bias))
        w.add_tensor(p + "ln2.weight", _np(b.ln2.weight))
        w.add_tensor(p + "ln2.bias", _np(b.ln2.bias))
    w.add_tensor("v.post_ln.weight", _np(enc.post_ln.weight))
    w.add_tensor("v.post_ln.bias", _np(enc.post_ln.bias))
    w.add_tensor("mm.input_norm.weight", _np(enc.proj_ln.weight))
    w.add_tensor("mm.input_norm.bias", _np(enc.proj_ln.bias))
    w.add_tensor("mm.1.weight", _np(enc.mm1.weight), mt)
    w.add_tensor("mm.1.bias", _np(enc.mm1.bias))
    w.add_tensor("mm.2.weight", _np(enc.mm2.weight), mt)
    w.add_tensor("mm.2.bias", _np(enc.mm2.bias))
    w.write(path)


def export_vl(model, text_path, mmproj_path, vocab_path=DEFAULT_VOCAB, name="LFM2-VL trained-synthetic",
              size_label="TINY", ftype="f32"):
    write_backbone(text_path, model.lm, vocab_path, name, size_label, ftype)
    write_mmproj(mmproj_path, model.vision, name + " mmproj", ftype)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--text", required=True, help="output text model GGUF")
    ap.add_argument("--mmproj", required=True, help="output mmproj GGUF")
    ap.add_argument("--type", default="f32", choices=sorted(FILE_TYPE))
    ap.add_argument("--vocab", default=None, help="GGUF to copy the tokenizer from (default: the checkpoint's)")
    ap.add_argument("--name", default=None)
    a = ap.parse_args()
    import checkpoint
    model, meta = checkpoint.load_model(a.checkpoint)
    export_vl(model, a.text, a.mmproj, a.vocab or meta["vocab"], a.name or meta.get("name", "LFM2-VL trained"),
              ftype=a.type)
    print("wrote %s (%d bytes) and %s (%d bytes)" % (a.text, os.path.getsize(a.text), a.mmproj,
                                                    os.path.getsize(a.mmproj)))


if __name__ == "__main__":
    main()
