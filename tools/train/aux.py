"""aux.py — auxiliary training heads on the projector's output (not exported):

  * global: learned queries attend over a picture's embedding rows and classify what the
    caption says — the pattern, or a scene's relation, the group's count, colour and shape, and
    the other shape's colour and shape;
  * dense: every embedding row (a 32×32-pixel cell of the picture) says which shape and colour
    covers its centre, if any, how many shapes that shape's group has and its part in the
    scene (the one group; the group or the other shape of a "left of" scene) — what the
    caption needs, on the rows where the backbone will look for it.

They give the encoder direct signals from the first step, where the caption loss reaches it
only through the backbone's attention layers; the exported model is the plain LFM2-VL pair.
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


DENSE = 1 + len(SHAPES) * len(COLOURS)     # 0: no shape here; else (shape, colour)
ROLES = 1 + 2 * len(scenes.RELATIONS)      # the one group; (group, other shape) per relation


def _covers(shape, cx, cy, s, x, y):
    r = s / 2.0
    if shape == "circle":
        return (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    return abs(x - cx) <= r and abs(y - cy) <= r


def dense_labels(caption, objects, w, h, tw, th):
    """Per-cell labels (shape/colour, role, group size; 0 / -1 = none) of a w×h scene whose
    rows come from a tw×th (single or thumbnail) image: cell (i, j) covers x in [i·w/gw,
    (i+1)·w/gw) of the original, likewise y, and is labelled with the shape that covers its
    centre. Cells on a shape's outline see whether it is round or square in their own pixels,
    the inner ones only through the encoder's attention. objects: as scenes.random_scene lists
    them (the group first), or None for a pattern."""
    gw, gh = tw // 32, th // 32
    cls, role, count = [0] * (gw * gh), [-1] * (gw * gh), [-1] * (gw * gh)
    if objects:
        g1, rel, _ = scenes.parse(caption)
        for c in range(gw * gh):
            x, y = (c % gw + 0.5) * w / gw, (c // gw + 0.5) * h / gh
            for k, (shape, colour, cx, cy, s) in enumerate(objects):
                if _covers(shape, cx, cy, s, x, y):
                    cls[c] = 1 + SHAPES.index(shape) * len(COLOURS) + COLOURS.index(colour)
                    in_group = k < g1[0]
                    role[c] = 0 if rel is None else 1 + 2 * scenes.RELATIONS.index(rel) + (0 if in_group else 1)
                    count[c] = g1[0] - 1 if in_group else 0
                    break
    return cls, role, count


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
        self.dense = nn.Linear(n_embd, DENSE)
        self.role = nn.Linear(n_embd, ROLES)
        self.count = nn.Linear(n_embd, 3)
        self.register_buffer("dense_weight", torch.tensor([1.0] + [2.0] * (DENSE - 1)), persistent=False)

    def loss(self, rows, captions, dense=None):
        """rows: [batch, n, E] embedding rows of the pictures; dense: per picture the three
        label lists of dense_labels, or None. Mean cross-entropy over the global heads, plus
        the dense ones."""
        att = torch.softmax(self.q @ self.k(rows).transpose(1, 2) / rows.shape[-1] ** 0.5, -1)   # [b, H, n]
        pooled = att @ rows                                                                        # [b, H, E]
        y = torch.tensor([labels(c) for c in captions])
        total = 0.0
        for i, head in enumerate(self.out):
            if (y[:, i] >= 0).any():
                total = total + F.cross_entropy(head(pooled[:, i]), y[:, i], ignore_index=-1)
        total = total / len(HEADS)
        if dense is not None:
            yc, yr, yn = (torch.tensor([d[i] for d in dense]).reshape(-1) for i in range(3))
            total = total + F.cross_entropy(self.dense(rows).reshape(-1, DENSE), yc, self.dense_weight)
            if (yr >= 0).any():
                total = total + F.cross_entropy(self.role(rows).reshape(-1, ROLES), yr, ignore_index=-1)
                total = total + F.cross_entropy(self.count(rows).reshape(-1, 3), yn, ignore_index=-1)
        return total
