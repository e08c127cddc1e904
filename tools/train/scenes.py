"""scenes.py — pictures of coloured shapes with a caption that is true for them (standard
library only: training and the tests draw with the same code).

    "a red circle"                            one group: a count (1-3), a colour, a shape
    "three blue squares"
    "two red circles left of a blue square"   a group of one or two, and one more shape of
    "a green square left of a red circle"     another colour level with it, to its right

The grammar is chosen to be learnable by a ~1 M parameter model in one training run of under
an hour on two CPU cores (docs/models.md): three colours, two shapes, large shapes all of one
size per picture (a fixed share of its area), side by side in one row on a dark uniform
background. A group and the other shape never share a colour, so a picture with two colours is
always a "left of" scene. Shapes are filled, without antialiasing, never overlap and keep a margin from the edges. Scenes are
drawn at aspect ratios MIN_ASPECT..MAX_ASPECT (square to wide: a row of four shapes in a tall
picture would be too small to tell a circle from a square).
"""
import math
import random

COLOURS = {                     # name -> base RGB (jittered a little per picture)
    "red": (225, 30, 30),
    "green": (40, 200, 50),
    "blue": (40, 80, 255),
}
SHAPES = ["circle", "square"]
COUNTS = {1: "a", 2: "two", 3: "three"}
RELATIONS = ["left of"]
MAX_GROUP_BESIDE = 2            # the group's size in a "left of" scene
P_SINGLE = 0.4                  # share of one-group scenes
MIN_ASPECT, MAX_ASPECT = 1.0, 2.4
SIZE = 0.2                      # a shape's side / diameter, relative to sqrt(width × height)


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
        """A filled shape of size s (diameter / side) centred at (cx, cy)."""
        r = s / 2.0
        for y in range(int(math.floor(cy - r)), int(math.ceil(cy + r)) + 1):
            yc = y + 0.5
            if kind == "circle":
                d2 = r * r - (yc - cy) ** 2
                if d2 <= 0:
                    continue
                dx = math.sqrt(d2)
                self.span(y, int(math.ceil(cx - dx - 0.5)), int(math.floor(cx + dx - 0.5)) + 1, rgb)
            elif cy - r <= yc < cy + r:      # square
                self.span(y, int(round(cx - r)), int(round(cx + r)), rgb)


def _jitter(rng, rgb):
    return tuple(max(0, min(255, c + rng.randint(-18, 18))) for c in rgb)


def random_scene(rng, w, h, objects=False):
    """A random scene for a w×h picture: (rgb bytes, caption), and with objects=True also the
    shapes drawn, [(shape, colour, cx, cy, size)] (the group first)."""
    m = min(w, h)
    bg = rng.randint(0, 45)
    canvas = Canvas(w, h, (bg, bg, bg + rng.randint(0, 10)))
    pad = 0.05 * m
    single = rng.random() < P_SINGLE
    n = rng.randint(1, 3 if single else MAX_GROUP_BESIDE)
    colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
    colour2 = rng.choice([c for c in COLOURS if c != colour])
    shape2 = rng.choice(SHAPES)
    gap = rng.uniform(0.25, 0.4)                     # between the group's shapes, in sizes
    sep = rng.uniform(0.5, 0.8)                      # between the group and the other shape
    units = n + (n - 1) * gap + (0 if single else sep + 1)
    # one shape covers a fixed share of the picture (SIZE² of its area, ±5 %): the area of a
    # colour then tells how many shapes have it, whatever the picture's size and shape
    s = min(SIZE * math.sqrt(w * h) * rng.uniform(0.95, 1.05), (w - 2 * pad) / units, 0.8 * (h - 2 * pad))
    span = units * s
    x = rng.uniform(pad, w - pad - span) + s / 2     # the first shape's centre
    dy = 0.0 if single else rng.uniform(-0.15, 0.15) * s
    cy = rng.uniform(pad + s / 2 + abs(dy), h - pad - s / 2 - abs(dy))
    objs = []

    def draw(kind, name, cx, cy):
        canvas.shape(kind, cx, cy, s, rgb[name])
        objs.append((kind, name, cx, cy, s))

    rgb = {c: _jitter(rng, COLOURS[c]) for c in (colour, colour2)}
    for k in range(n):
        draw(shape, colour, x + k * (1 + gap) * s, cy)
    caption = group_text(n, colour, shape)
    if not single:
        draw(shape2, colour2, x + (n - 1) * (1 + gap) * s + (1 + sep) * s, cy + dy)
        caption += " left of " + group_text(1, colour2, shape2)
    return (bytes(canvas.px), caption, objs) if objects else (bytes(canvas.px), caption)


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
        return n, ws[1], shape[:-1] if n > 1 else shape
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
            if a[0] <= MAX_GROUP_BESIDE and b[0] == 1 and a[1] != b[1]:
                out += ["%s %s %s" % (group_text(*a), r, group_text(*b)) for r in RELATIONS]
    return out


if __name__ == "__main__":   # a quick look: python3 scenes.py OUT.ppm [W H SEED]
    import sys
    w, h, seed = (int(x) for x in (sys.argv[2:5] if len(sys.argv) > 4 else (320, 240, 1)))
    px, cap = random_scene(random.Random(seed), w, h)
    with open(sys.argv[1], "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (w, h) + px)
    print(cap)
