#!/usr/bin/env python3
"""heldout.py — renders a held-out captioning set: new videotestsrc frames (gst-launch-1.0) and
new shape scenes, at sizes drawn from their own seed, as binary PPM files plus truth.tsv
(file, width, height, kind, caption). Standard library only (the tests run it with any python3).

    python3 tools/train/heldout.py --out DIR [--seed S] [--patterns N] [--scenes N]

Every pattern appears --patterns / 15 times or more (round robin, a new size each time; `ball`
at a new animation frame, `snow` at a new frame). Sizes mix small pictures (scaled up to
64..100 image tokens), medium ones (up to 256) and tiled ones (512² tiles + thumbnail), as in
training; patterns at aspect ratios 1:2.4..2.4:1, scenes at theirs (scenes.py).
"""
import argparse
import math
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import patterns  # noqa: E402
import scenes  # noqa: E402

KINDS = [("small", 0.6, (9e3, 1.0e5)), ("medium", 0.32, (1.1e5, 4.6e5)), ("tiled", 0.08, (5.8e5, 1.0e6))]


def random_size(rng, aspects=(1 / 2.4, 2.4)):
    r, acc = rng.random(), 0.0
    for kind, p, (lo, hi) in KINDS:
        acc += p
        if r < acc:
            break
    area = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    aspect = math.exp(rng.uniform(math.log(aspects[0]), math.log(aspects[1])))
    w = max(32, int(round(math.sqrt(area * aspect))))
    return w, max(32, int(round(area / w)))


def generate(out, seed=1000, n_patterns=30, n_scenes=30, gst_launch="gst-launch-1.0"):
    os.makedirs(out, exist_ok=True)
    rng = random.Random("heldout-%d" % seed)
    registry = os.path.join(out, "gst-registry.bin")
    rows = []
    for i in range(n_patterns):
        pat = patterns.PATTERNS[i % len(patterns.PATTERNS)]
        w, h = random_size(rng)
        props, n = {}, 1
        if pat == "ball":
            props["motion"] = rng.choice(patterns.MOTIONS)
            n = rng.randint(1, 120)
        elif pat == "snow":
            n = rng.randint(1, 30)
        frame = patterns.render([("x", pat, props, n)], w, h, registry, gst_launch)["x"][-1]
        name = "%03d-%s-%dx%d.ppm" % (len(rows), pat, w, h)
        patterns.write_ppm(os.path.join(out, name), w, h, frame)
        rows.append((name, w, h, "pattern", patterns.CAPTIONS[pat]))
    for i in range(n_scenes):
        w, h = random_size(rng, (scenes.MIN_ASPECT, scenes.MAX_ASPECT))
        px, cap = scenes.random_scene(rng, w, h)
        name = "%03d-scene-%dx%d.ppm" % (len(rows), w, h)
        patterns.write_ppm(os.path.join(out, name), w, h, px)
        rows.append((name, w, h, "scene", cap))
    if os.path.exists(registry):
        os.remove(registry)
    with open(os.path.join(out, "truth.tsv"), "w") as f:
        for r in rows:
            f.write("%s\t%d\t%d\t%s\t%s\n" % r)
    return rows


def read_truth(d):
    with open(os.path.join(d, "truth.tsv")) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--patterns", type=int, default=30)
    ap.add_argument("--scenes", type=int, default=30)
    a = ap.parse_args()
    rows = generate(a.out, a.seed, a.patterns, a.scenes)
    print("heldout: %d pictures in %s" % (len(rows), a.out))


if __name__ == "__main__":
    main()
