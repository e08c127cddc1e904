"""aux.py — an auxiliary training head on the projector's output (not exported): learned
queries attend over a picture's embedding rows and classify what the caption says — the
pattern, or a scene's relation, the group's count, colour and shape, and the other shape's colour
and shape. It gives the encoder a
direct signal from the first step, where the caption loss reaches it only through the
backbone's attention layers; the exported model is the plain LFM2-VL pair.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

import patterns
import scenes

COLOURS, SHAPES = list(scenes.COLOURS), scenes.SHAPES
# (name, classes); a label of -1 is ignored (a pattern has no groups, a single group no second)
HEADS = [("kind", len(patterns.PATTERNS) + 1), ("relation", 1 + len(scenes.RELATIONS)),
         ("count1", 3), ("colour1", len(COLOURS)), ("shape1", len(SHAPES)),
         ("colour2", len(COLOURS)), ("shape2", len(SHAPES))]


def labels(caption):
    if caption in patterns.CAPTIONS.values():
        k = list(patterns.CAPTIONS.values()).index(caption)
        return [k] + [-1] * (len(HEADS) - 1)
    g1, rel, g2 = scenes.parse(caption)
    out = [len(patterns.PATTERNS), 0 if rel is None else 1 + scenes.RELATIONS.index(rel),
           g1[0] - 1, COLOURS.index(g1[1]), SHAPES.index(g1[2])]
    out += [COLOURS.index(g2[1]), SHAPES.index(g2[2])] if g2 else [-1, -1]
    return out


class AuxHead(nn.Module):
    def __init__(self, n_embd):
        super().__init__()
        self.q = nn.Parameter(torch.randn(len(HEADS), n_embd) * 0.02)
        self.k = nn.Linear(n_embd, n_embd)
        self.out = nn.ModuleList(nn.Linear(n_embd, n) for _, n in HEADS)

    def loss(self, rows, captions):
        """rows: [batch, n, E] embedding rows of the pictures; mean cross-entropy over heads."""
        att = torch.softmax(self.q @ self.k(rows).transpose(1, 2) / rows.shape[-1] ** 0.5, -1)   # [b, H, n]
        pooled = att @ rows                                                                        # [b, H, E]
        y = torch.tensor([labels(c) for c in captions])
        total = 0.0
        for i, head in enumerate(self.out):
            if (y[:, i] >= 0).any():
                total = total + F.cross_entropy(head(pooled[:, i]), y[:, i], ignore_index=-1)
        return total / len(HEADS)
