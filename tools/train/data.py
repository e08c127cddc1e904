"""data.py — the synthetic captioning data for the vision model: videotestsrc frames
(patterns.py) and shape scenes (scenes.py) at varied sizes and aspect ratios, so that every
branch of the preprocessing (scaled up, scaled down, tiled) is trained.

Everything derives from (seed, step): a batch is a pure function of them, so a resumed run sees
the batches it would have seen, and two runs with one seed see the same data.

Pattern frames are rendered once per picture size into a cache directory (PNG files), since
starting gst-launch-1.0 per sample would cost more than the training step.
"""
import math
import os
import random

import numpy as np
from PIL import Image

import patterns
import scenes

PROMPTS = ["Describe this image.", "Describe this image in one sentence.", "What is in this picture?",
           "Caption this frame.", "What do you see?"]
SYSTEM = "You are a helpful multimodal assistant."
COMMON_ASPECTS = [4 / 3, 16 / 9, 1.0, 3 / 2, 3 / 4, 9 / 16, 2.0, 5 / 4]


def random_size(rng, kind, aspects=(1 / 2.4, 2.4)):
    """A picture size. kind: 'small' (scaled to 64..~100 tokens), 'medium' (~100..256 tokens),
    'tiled' (over the 2×256-token budget: split into 512² tiles + thumbnail); its aspect ratio
    w/h in aspects (half the time a common one there)."""
    lo, hi = {"small": (9e3, 1.0e5), "medium": (1.1e5, 4.6e5), "tiled": (5.8e5, 1.0e6)}[kind]
    area = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    common = [a for a in COMMON_ASPECTS if aspects[0] <= a <= aspects[1]]
    if common and rng.random() < 0.5:
        aspect = rng.choice(common)
    else:
        aspect = math.exp(rng.uniform(math.log(aspects[0]), math.log(aspects[1])))
    w = max(32, int(round(math.sqrt(area * aspect))))
    h = max(32, int(round(area / w)))
    return w, h


def size_pool(seed, n=64, mix=(("small", 0.70), ("medium", 0.26), ("tiled", 0.04)), p_tall=0.2):
    """The picture sizes of a run: a share p_tall taller than scenes are drawn (those batches
    are all patterns), the rest at the scenes' aspect ratios."""
    rng = random.Random("sizes-%d" % seed)
    out = []
    for kind, frac in mix:
        for _ in range(max(1, round(n * frac))):
            tall = rng.random() < p_tall
            out.append(random_size(rng, kind, (1 / 2.4, scenes.MIN_ASPECT) if tall
                                   else (scenes.MIN_ASPECT, scenes.MAX_ASPECT)))
    return out


def pattern_jobs(rng, yuv=False):
    """The videotestsrc streams rendered per size: one frame of each still pattern, moving
    frames of smpte (scrolling), ball (three motions) and snow; with yuv, also 'colors' as an
    I420 pipeline shows it. Keys: 'pattern/index'."""
    jobs = []
    for p in patterns.PATTERNS:
        if p not in ("ball", "snow"):
            jobs.append((p + "/0", p, {}, 1))
    jobs.append(("smpte/scroll", "smpte", {"horizontal-speed": rng.choice([2, 3, 5, 7])}, 40))
    for m in patterns.MOTIONS:
        jobs.append(("ball/" + m, "ball", {"motion": m}, 90))
    jobs.append(("snow/0", "snow", {}, 6))
    if yuv:
        jobs.append(("colors/yuv", "colors", {"format": "I420"}, 1))
    return jobs


class PatternCache:
    """Frames per size, as PNG files under cache_dir/WxH/ (made on first use)."""

    KEEP = {"smpte/scroll": range(4, 40, 6), "ball/wavy": range(0, 90, 6), "ball/sweep": range(0, 90, 9),
            "ball/hsweep": range(0, 90, 9), "snow/0": range(6)}

    def __init__(self, cache_dir, seed, yuv=False):
        self.dir = cache_dir
        self.seed = seed
        self.yuv = yuv
        self.index = {}

    def frames(self, w, h):
        """{pattern: [png paths]} for this size."""
        if (w, h) in self.index:
            return self.index[(w, h)]
        d = os.path.join(self.dir, "%dx%d" % (w, h))
        done = os.path.join(d, "done")
        jobs = pattern_jobs(random.Random("jobs-%d-%dx%d" % (self.seed, w, h)), self.yuv)
        if os.path.exists(done):   # rendered before: only what was added since (yuv)
            jobs = [j for j in jobs if j[0] == "colors/yuv" and
                    not os.path.exists(os.path.join(d, "colors_yuv-0.png"))]
        if jobs:
            os.makedirs(d, exist_ok=True)
            got = patterns.render(jobs, w, h, os.path.join(self.dir, "gst-registry.bin"))
            for key, frs in got.items():
                keep = self.KEEP.get(key, range(len(frs)))
                for i in keep:
                    Image.frombytes("RGB", (w, h), frs[i]).save(
                        os.path.join(d, "%s-%d.png" % (key.replace("/", "_"), i)), compress_level=1)
            open(done, "w").close()
        idx = {}
        for f in sorted(os.listdir(d)):
            if f.endswith(".png") and (self.yuv or "_yuv-" not in f):
                pat = f.split("_")[0]
                idx.setdefault(pat, []).append(os.path.join(d, f))
        self.index[(w, h)] = idx
        return idx


def sample(rng, w, h, cache, p_pattern=0.42):
    """One (PIL RGB image, caption, shapes drawn or None) of size w×h: a pattern frame with
    probability p_pattern, else a scene (always a pattern when w×h is taller than scenes are
    drawn)."""
    if rng.random() < p_pattern or w < scenes.MIN_ASPECT * h:
        pat = rng.choice(patterns.PATTERNS)
        path = rng.choice(cache.frames(w, h)[pat])
        return Image.open(path).convert("RGB"), patterns.CAPTIONS[pat], None
    px, caption, objs = scenes.random_scene(rng, w, h, objects=True)
    return Image.frombytes("RGB", (w, h), px), caption, objs


def batch_spec(seed, step, sizes, patch_budget=4096, p_fresh=0.5):
    """(rng, size, plan, batch size, prompt, system, scenes only) of a step. The size is one of
    the run's pool (whose pattern frames are cached) or, with probability p_fresh, a new one
    for a batch of scenes only; the batch size keeps the encoder's patches per step near
    patch_budget."""
    import vision
    rng = random.Random("batch-%d-%d" % (seed, step))
    fresh = rng.random() < p_fresh
    if fresh:
        r = rng.random()
        kind = "small" if r < 0.7 else "medium" if r < 0.96 else "tiled"
        w, h = random_size(rng, kind, (scenes.MIN_ASPECT, scenes.MAX_ASPECT))
    else:
        w, h = rng.choice(sizes)
    plan = vision.make_plan(w, h)
    patches = plan.n_tokens * 4
    bsz = max(2, min(16, patch_budget // patches))
    prompt = rng.choice(PROMPTS)
    system = SYSTEM if rng.random() < 0.1 else None
    return rng, (w, h), plan, bsz, prompt, system, fresh


def preload(sizes, cache, log=print):
    """Renders every size's frames (once; later runs find them in the cache)."""
    for i, (w, h) in enumerate(sizes):
        cache.frames(w, h)
        log("patterns: %d/%d sizes rendered" % (i + 1, len(sizes)))


def as_array(img):
    return np.asarray(img)
