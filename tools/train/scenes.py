"""scenes.py — pictures of coloured shapes with a caption that is true for them (standard
library only: training and the tests draw with the same code).

    "a red circle"                          one group: a count, a colour, a shape
    "three yellow triangles"
    "two red circles left of a blue square" a group and one more shape, every shape of the group
    "a green square above a yellow circle"  strictly left of (or above) the other one

Shapes are filled, without antialiasing, on a dark uniform background; they have one size per
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


def _place(rng, n, s, box, taken):
    """n centres for shapes of size s inside box = (x0, y0, x1, y1), apart from each other and
    from `taken` [(cx, cy, s)]; None when the box is too crowded."""
    x0, y0, x1, y1 = box
    out = []
    for _ in range(n):
        for _attempt in range(60):
            cx, cy = rng.uniform(x0 + s / 2, x1 - s / 2), rng.uniform(y0 + s / 2, y1 - s / 2)
            if all(math.hypot(cx - ox, cy - oy) > 0.62 * (s + os_) * 1.25 for ox, oy, os_ in taken + out):
                out.append((cx, cy, s))
                break
        else:
            return None
    return out


def _jitter(rng, rgb):
    return tuple(max(0, min(255, c + rng.randint(-18, 18))) for c in rgb)


def random_scene(rng, w, h):
    """A random scene for a w×h picture: (rgb bytes, caption)."""
    while True:
        got = _try_scene(rng, w, h)
        if got:
            return got


def _try_scene(rng, w, h):
    m = min(w, h)
    bg = rng.randint(0, 45)
    canvas = Canvas(w, h, (bg, bg, bg + rng.randint(0, 10)))
    pad = 0.04 * m
    if rng.random() < P_SINGLE:                                   # one group
        n, colour, shape = rng.randint(1, 3), rng.choice(list(COLOURS)), rng.choice(SHAPES)
        s = rng.uniform(0.18, 0.3) * m
        pos = _place(rng, n, s, (pad, pad, w - pad, h - pad), [])
        if pos is None:
            return None
        rgb = _jitter(rng, COLOURS[colour])
        for cx, cy, sz in pos:
            canvas.shape(shape, cx, cy, sz, rgb)
        return bytes(canvas.px), group_text(n, colour, shape)
    rel = rng.choice(RELATIONS)
    groups = []
    while len(groups) < 2:
        g = (rng.randint(1, 3) if not groups else 1, rng.choice(list(COLOURS)), rng.choice(SHAPES))
        if not groups or g[1:] != groups[0][1:]:
            groups.append(g)
    s = rng.uniform(0.16, 0.26) * m
    # the first group left of (above) a split line, the second right of (below) it, with a gap
    split = rng.uniform(0.4, 0.6)
    gap = 0.03 * m
    if rel == "left of":
        cut = split * w
        boxes = [(pad, pad, cut - gap, h - pad), (cut + gap, pad, w - pad, h - pad)]
    else:
        cut = split * h
        boxes = [(pad, pad, w - pad, cut - gap), (pad, cut + gap, w - pad, h - pad)]
    taken = []
    for (n, colour, shape), box in zip(groups, boxes):
        if box[2] - box[0] < s * 1.1 or box[3] - box[1] < s * 1.1:
            return None
        pos = _place(rng, n, s, box, taken)
        if pos is None:
            return None
        taken += pos
        rgb = _jitter(rng, COLOURS[colour])
        for cx, cy, sz in pos:
            canvas.shape(shape, cx, cy, sz, rgb)
    caption = "%s %s %s" % (group_text(*groups[0]), rel, group_text(*groups[1]))
    return bytes(canvas.px), caption


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
