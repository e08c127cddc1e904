"""scenes.py — pictures of coloured shapes with a caption that is true for them (standard
library only: training and the tests draw with the same code).

    "a red circle"                          one group: a count, a colour, a shape
    "three yellow triangles"
    "two red circles left of a blue square" a group and one more shape: level with the group and
    "a green square above a yellow circle"  right of it, or under it and within its width

A group is a row of its shapes side by side, so "left of" and "above" never both hold. Shapes
are filled, without antialiasing, on a dark uniform background; they have one size per
picture, never overlap and keep a margin from the edges.
"""
import math
import random

COLOURS = {                     # name -> base RGB (jittered a little per picture)
    "red": (225, 30, 30),
    "green": (40, 200, 50),
    "blue": (40, 80, 255),
    "yellow": (235, 220, 40),
}
SHAPES = ["circle", "square", "triangle"]
COUNTS = {1: "a", 2: "two", 3: "three"}
RELATIONS = ["left of", "above"]
P_SINGLE = 0.4


def group_text(n, colour, shape):
    return "%s %s %s%s" % (COUNTS[n], colour, shape, "s" if n > 1 else "")


class Canvas:
    def __init__(self, w, h, rgb):
        self.w, self.h = w, h
        self.px = bytearray(bytes(rgb) * (w * h))

    def span(self, y, x0, x1, rgb):
        x0, x1 = max(0, x0), min(self.w, x1)
        if 0 <= y < self.h and x1 > x0:
            o = (y * self.w + x0) * 3
            self.px[o:o + 3 * (x1 - x0)] = bytes(rgb) * (x1 - x0)

    def shape(self, kind, cx, cy, s, rgb):
        """A filled shape of size s (diameter / side / base and height) centred at (cx, cy)."""
        r = s / 2.0
        for y in range(int(math.floor(cy - r)), int(math.ceil(cy + r)) + 1):
            yc = y + 0.5
            if kind == "circle":
                d2 = r * r - (yc - cy) ** 2
                if d2 <= 0:
                    continue
                dx = math.sqrt(d2)
                self.span(y, int(math.ceil(cx - dx - 0.5)), int(math.floor(cx + dx - 0.5)) + 1, rgb)
            elif kind == "square":
                if cy - r <= yc < cy + r:
                    self.span(y, int(round(cx - r)), int(round(cx + r)), rgb)
            else:   # triangle, apex up: width grows linearly from the apex to the base
                t = (yc - (cy - r)) / s
                if 0.0 <= t <= 1.0:
                    self.span(y, int(round(cx - r * t)), int(round(cx + r * t)), rgb)


def _jitter(rng, rgb):
    return tuple(max(0, min(255, c + rng.randint(-18, 18))) for c in rgb)


def random_scene(rng, w, h, objects=False):
    """A random scene for a w×h picture: (rgb bytes, caption), and with objects=True also the
    shapes drawn, [(shape, colour, cx, cy, size)]."""
    while True:
        got = _try_scene(rng, w, h)
        if got:
            return got if objects else got[:2]


def _row(rng, n, s):
    """Centres (relative to the row's centre) and half extents of n shapes of size s side by
    side, 0.2..0.6·s apart."""
    gap = rng.uniform(0.2, 0.6) * s
    span = n * s + (n - 1) * gap
    xs = [-span / 2 + s / 2 + k * (s + gap) for k in range(n)]
    return xs, span / 2, s / 2


def _try_scene(rng, w, h):
    m = min(w, h)
    bg = rng.randint(0, 45)
    canvas = Canvas(w, h, (bg, bg, bg + rng.randint(0, 10)))
    pad = 0.04 * m
    objs = []

    def draw(shape, colour, centres, s):
        rgb = _jitter(rng, COLOURS[colour])
        for cx, cy in centres:
            canvas.shape(shape, cx, cy, s, rgb)
            objs.append((shape, colour, cx, cy, s))

    if rng.random() < P_SINGLE:                                   # one group: a row of n shapes
        n, colour, shape = rng.randint(1, 3), rng.choice(list(COLOURS)), rng.choice(SHAPES)
        s = rng.uniform(0.16, 0.28) * m
        xs, hw, hh = _row(rng, n, s)
        if 2 * (hw + pad) > w or 2 * (hh + pad) > h:
            return None
        cx, cy = rng.uniform(pad + hw, w - pad - hw), rng.uniform(pad + hh, h - pad - hh)
        draw(shape, colour, [(cx + x, cy) for x in xs], s)
        return bytes(canvas.px), group_text(n, colour, shape), objs
    # a row of n shapes, and one other shape beside it ("left of": level with the row, to its
    # right) or under it ("above": below the row, within its width) — never both
    rel = rng.choice(RELATIONS)
    n, colour, shape = rng.randint(1, 3), rng.choice(list(COLOURS)), rng.choice(SHAPES)
    while True:
        colour2, shape2 = rng.choice(list(COLOURS)), rng.choice(SHAPES)
        if (colour2, shape2) != (colour, shape):
            break
    s = rng.uniform(0.14, 0.24) * m
    xs, hw, hh = _row(rng, n, s)
    sep = rng.uniform(0.6, 1.6) * s                                 # edge to edge
    if rel == "left of":
        bw, bh = 2 * hw + sep + s, max(2 * hh, s)
    else:
        bw, bh = max(2 * hw, s), 2 * hh + sep + s
    if bw + 2 * pad > w or bh + 2 * pad > h:
        return None
    x0, y0 = rng.uniform(pad, w - pad - bw), rng.uniform(pad, h - pad - bh)
    if rel == "left of":
        rcx, rcy = x0 + hw, y0 + bh / 2
        ox, oy = x0 + 2 * hw + sep + s / 2, rcy + rng.uniform(-0.25, 0.25) * s
    else:
        rcx, rcy = x0 + bw / 2, y0 + hh
        ox, oy = rcx + rng.uniform(-1, 1) * max(0.0, hw - s / 2), y0 + 2 * hh + sep + s / 2
    draw(shape, colour, [(rcx + x, rcy) for x in xs], s)
    draw(shape2, colour2, [(ox, oy)], s)
    caption = "%s %s %s" % (group_text(n, colour, shape), rel, group_text(1, colour2, shape2))
    return bytes(canvas.px), caption, objs


def parse(caption):
    """The groups and relation of a scene caption: ((n, colour, shape), relation or None,
    (n, colour, shape) or None); None when it is not a scene caption."""
    words = caption.split()
    num = {v: k for k, v in COUNTS.items()}

    def group(ws):
        if len(ws) != 3 or ws[0] not in num or ws[1] not in COLOURS:
            return None
        n, shape = num[ws[0]], ws[2]
        if (shape[:-1] if n > 1 else shape) not in SHAPES or (n > 1) != shape.endswith("s"):
            return None
        return n, ws[1], shape.rstrip("s")
    if len(words) == 3:
        g = group(words)
        return (g, None, None) if g else None
    for rel in RELATIONS:
        r = rel.split()
        if words[3:3 + len(r)] == r:
            g1, g2 = group(words[:3]), group(words[3 + len(r):])
            return (g1, rel, g2) if g1 and g2 else None
    return None


def all_captions():
    """Every caption the scene grammar can produce (for the tokenizer check and statistics)."""
    gs = [(n, c, s) for n in COUNTS for c in COLOURS for s in SHAPES]
    out = [group_text(*g) for g in gs]
    for a in gs:
        for b in gs:
            if a[1:] != b[1:] and b[0] == 1:
                out += ["%s %s %s" % (group_text(*a), r, group_text(*b)) for r in RELATIONS]
    return out


if __name__ == "__main__":   # a quick look: python3 scenes.py OUT.ppm [W H SEED]
    import sys
    w, h, seed = (int(x) for x in (sys.argv[2:5] if len(sys.argv) > 4 else (320, 240, 1)))
    px, cap = random_scene(random.Random(seed), w, h)
    with open(sys.argv[1], "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (w, h) + px)
    print(cap)
