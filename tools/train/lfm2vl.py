"""lfm2vl.py — an LFM2-VL model (backbone.py + vision.py) and its prompt layout.

The user turn is laid out as the engine's lfm2_vision_chat_prompt does (vision/layout.c):

    [BOS] <|im_start|>user\\n <|image_start|> … image rows … <|image_end|> PROMPT<|im_end|>\\n
    <|im_start|>assistant\\n  CAPTION <|im_end|>

Text around the image is tokenized piece by piece, BOS on the first piece only.
"""
import torch
import torch.nn as nn

from backbone import Backbone, BackboneConfig
from vision import VisionConfig, VisionEncoder, layout, to_input


class LFM2VL(nn.Module):
    def __init__(self, bcfg: BackboneConfig, vcfg: VisionConfig):
        super().__init__()
        assert vcfg.n_embd_text == bcfg.n_embd
        self.lm = Backbone(bcfg)
        self.vision = VisionEncoder(vcfg)

    def init_weights(self, seed):
        g = torch.Generator().manual_seed(seed)
        self.lm.init_weights(g)
        self.vision.init_weights(g)


def prompt_ids(tok, plan, user_text, system=None):
    """Token ids of the prompt up to the assistant's first token; -1 marks an image row."""
    head = ""
    if system is not None:
        head = "<|im_start|>system\n" + system + "<|im_end|>\n"
    ids = tok.encode(head + "<|im_start|>user\n", bos=True)
    ids += layout(tok, plan)
    ids += tok.encode(user_text + "<|im_end|>\n<|im_start|>assistant\n")
    return ids


def splice(lm, ids, rows):
    """Input embeddings [T, n_embd]: token embeddings, the image rows at the -1 positions."""
    t = torch.tensor(ids)
    img = t < 0
    x = lm.embed(t.clamp(min=0))
    if rows is not None:
        x = x.masked_scatter(img.unsqueeze(-1), rows.reshape(-1, x.shape[-1]))
    return x


@torch.no_grad()
def greedy_caption(model, tok, plan, chunks, user_text, max_tokens=48):
    """Greedy decoding (recomputing the whole sequence per token: the models are tiny)."""
    rows = encode_chunks(model.vision, plan, chunks)
    ids = prompt_ids(tok, plan, user_text)
    x = splice(model.lm, ids, rows)
    out = []
    for _ in range(max_tokens):
        h = model.lm.hidden(x.unsqueeze(0))[0, -1]
        nxt = int(model.lm.logits(h).argmax())
        if nxt in (tok.eos, tok.lookup("<|endoftext|>")):
            break
        out.append(nxt)
        x = torch.cat([x, model.lm.embed(torch.tensor([nxt]))], 0)
    return tok.decode(out).strip()


def encode_chunks(enc, plan, chunks):
    """Embedding rows of one picture in layout order: tiles (batched), then the thumbnail."""
    parts = []
    if plan.n_tiles:
        parts.append(enc(to_input(chunks[:-1])).reshape(-1, enc.cfg.n_embd_text))
    parts.append(enc(to_input(chunks[-1:]))[0])
    return torch.cat(parts, 0)
