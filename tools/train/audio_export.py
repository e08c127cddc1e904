"""audio_export.py — writes a PyTorch AudioEncoder (conformer.py) as an LFM2-Audio mmproj GGUF
(projector `lfm2a`): the keys in the order, and the tensor names, shapes, order and types of
`lfm2 mkmodel --config audio-*` (tools/mkmodel-audio.c: mkmodel_audio_keys, mkmodel_audio_plan),
which is the layout llama.cpp's converter writes (spec lfm2-audio.md §6.3). Convolution kernels,
norms, biases and u/v are F32 in every file; the other matrices take the file type; the
output-audio table (a.position_embd, a.embd_to_logits) is F16 unless the file is F32.
"""
import gguf

FILE_TYPE = {"f32": 0, "f16": 1}


def _np(t):
    return t.detach().cpu().float().numpy()


def write_audio_mmproj(path, enc, name, ftype="f32"):
    cfg = enc.cfg
    D, C, E = cfg.d_model, cfg.n_sub, cfg.n_embd_text
    w = gguf.Writer()
    w.add_str("general.architecture", "clip")
    w.add_str("general.type", "mmproj")
    w.add_str("general.name", name)
    w.add_u32("general.file_type", FILE_TYPE[ftype])
    w.add_bool("clip.has_vision_encoder", False)
    w.add_bool("clip.has_audio_encoder", True)
    w.add_str("clip.projector_type", "lfm2a")
    w.add_u32("clip.audio.embedding_length", D)
    w.add_u32("clip.audio.feed_forward_length", D)   # the converter writes d_model here
    w.add_u32("clip.audio.block_count", cfg.n_layer)
    w.add_u32("clip.audio.attention.head_count", cfg.n_head)
    w.add_f32("clip.audio.attention.layer_norm_epsilon", cfg.eps)
    w.add_u32("clip.audio.projection_dim", E)
    w.add_u32("clip.audio.num_mel_bins", 128)

    F32 = gguf.F32
    mt = F32 if ftype == "f32" else gguf.F16
    bias3 = (1, 1, C)    # subsampling biases are stored {1, 1, C}
    s = enc.sub
    for i, conv in ((0, s.conv0), (2, s.dw2), (3, s.pw3), (5, s.dw5), (6, s.pw6)):
        w.add_tensor("a.conv1d.%d.weight" % i, _np(conv.weight), F32)         # OIHW = ne {kx, ky, in, out}
        w.add_tensor("a.conv1d.%d.bias" % i, _np(conv.bias), F32, ne=bias3)
    w.add_tensor("a.pre_encode.out.weight", _np(s.out.weight), mt)
    w.add_tensor("a.pre_encode.out.bias", _np(s.out.bias))
    for l, L in enumerate(enc.layers):
        p = "a.blk.%d." % l

        def ffn(f, sfx):
            w.add_tensor(p + "ffn_norm%s.weight" % sfx, _np(f.norm.weight))
            w.add_tensor(p + "ffn_norm%s.bias" % sfx, _np(f.norm.bias))
            w.add_tensor(p + "ffn_up%s.weight" % sfx, _np(f.up.weight), mt)
            w.add_tensor(p + "ffn_up%s.bias" % sfx, _np(f.up.bias))
            w.add_tensor(p + "ffn_down%s.weight" % sfx, _np(f.down.weight), mt)
            w.add_tensor(p + "ffn_down%s.bias" % sfx, _np(f.down.bias))

        ffn(L.ff1, "")
        a = L.att
        w.add_tensor(p + "ln1.weight", _np(a.norm.weight))
        w.add_tensor(p + "ln1.bias", _np(a.norm.bias))
        for gname, lin in (("attn_q", a.q), ("attn_k", a.k), ("attn_v", a.v), ("attn_out", a.o)):
            w.add_tensor(p + gname + ".weight", _np(lin.weight), mt)
            w.add_tensor(p + gname + ".bias", _np(lin.bias))
        w.add_tensor(p + "linear_pos.weight", _np(a.pos.weight), mt)
        w.add_tensor(p + "pos_bias_u", _np(a.u))
        w.add_tensor(p + "pos_bias_v", _np(a.vb))
        c = L.conv
        w.add_tensor(p + "norm_conv.weight", _np(c.norm.weight))
        w.add_tensor(p + "norm_conv.bias", _np(c.norm.bias))
        w.add_tensor(p + "conv_pw1.weight", _np(c.pw1.weight), F32)
        w.add_tensor(p + "conv_pw1.bias", _np(c.pw1.bias))
        w.add_tensor(p + "conv_dw.weight", _np(c.dw.weight).reshape(D, cfg.conv_kernel), F32)
        w.add_tensor(p + "conv_dw.bias", _np(c.dw.bias))
        scale, shift = c.folded()
        w.add_tensor(p + "conv_norm.weight", _np(scale))
        w.add_tensor(p + "conv_norm.bias", _np(shift))
        w.add_tensor(p + "conv_pw2.weight", _np(c.pw2.weight), F32)
        w.add_tensor(p + "conv_pw2.bias", _np(c.pw2.bias))
        ffn(L.ff2, "_1")
        w.add_tensor(p + "ln2.weight", _np(L.norm_out.weight))
        w.add_tensor(p + "ln2.bias", _np(L.norm_out.bias))
    w.add_tensor("mm.a.mlp.0.weight", _np(enc.ad_norm.weight))
    w.add_tensor("mm.a.mlp.0.bias", _np(enc.ad_norm.bias))
    w.add_tensor("mm.a.mlp.1.weight", _np(enc.ad1.weight), mt)
    w.add_tensor("mm.a.mlp.1.bias", _np(enc.ad1.bias))
    w.add_tensor("mm.a.mlp.3.weight", _np(enc.ad3.weight), mt)
    w.add_tensor("mm.a.mlp.3.bias", _np(enc.ad3.bias))
    emb = F32 if ftype == "f32" else gguf.F16
    w.add_tensor("a.position_embd.weight", _np(enc.pos_embd), emb)
    w.add_tensor("a.position_embd_norm.weight", _np(enc.pos_embd_norm))
    w.add_tensor("a.embd_to_logits.weight", _np(enc.embd_to_logits), emb)
    w.write(path)
