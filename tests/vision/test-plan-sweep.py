#!/usr/bin/env python3
"""test-plan-sweep — issue 17's "Done when": for every combination of min_tiles in {1, 2},
use_thumbnail, do_image_splitting and max_pixels_tolerance in {1.5, 2.0}, and picture sizes
from 33x47 to 4000x3000, `lfm2 embed-image --plan` gives the token count and layout that
transformers' LFM2-VL processor gives (and refuses the sizes where transformers' own text
and image features disagree).

The rules are transcribed here from transformers' Lfm2VlImageProcessorFast and
Lfm2VlProcessor (smart_resize, _is_image_too_large, _target_ratios and
find_closest_aspect_ratio, crop_image_to_patches, _build_image_tokens), in Python, so the
rounding is Python's own (round half to even, float division). Tile labels are geometric:
<|img_row_R_col_C|> for tile row R, column C, as transformers 5 writes them (4.57 and earlier
unpacked the grid as (rows, cols) = (width, height) and so transposed the labels of
non-square grids; docs/vision.md). One CLI run per combination plans every size.
"""
import math
import os
import subprocess
import sys

CLI = os.environ["LFM2_CLI"]
DATA = os.environ["LFM2_TEST_DATA"] + "/vision"
MMPROJ = DATA + "/lfm2-vl-tiny-mmproj-f32.gguf"
MODEL = DATA + "/lfm2-vl-tiny-text-q4_0.gguf"

PATCH, MERGE, TILE = 16, 2, 512
FACTOR = PATCH * MERGE
MIN_TOKENS, MAX_TOKENS, MAX_TILES = 64, 256, 10


def round_by_factor(x, f):
    return round(x / f) * f


def smart_resize(h, w):
    min_px = MIN_TOKENS * PATCH ** 2 * MERGE ** 2
    max_px = MAX_TOKENS * PATCH ** 2 * MERGE ** 2
    hb = max(FACTOR, round_by_factor(h, FACTOR))
    wb = max(FACTOR, round_by_factor(w, FACTOR))
    if hb * wb > max_px:
        beta = math.sqrt(h * w / max_px)
        hb = max(FACTOR, math.floor(h / beta / FACTOR) * FACTOR)
        wb = max(FACTOR, math.floor(w / beta / FACTOR) * FACTOR)
    elif hb * wb < min_px:
        beta = math.sqrt(min_px / (h * w))
        hb = math.ceil(h * beta / FACTOR) * FACTOR
        wb = math.ceil(w * beta / FACTOR) * FACTOR
    return wb, hb


def too_large(h, w, tol):
    hb = max(PATCH, round_by_factor(h, FACTOR))
    wb = max(PATCH, round_by_factor(w, FACTOR))
    return hb * wb > MAX_TOKENS * PATCH ** 2 * MERGE ** 2 * tol


def target_ratios(lo, hi):
    r = {(gw, gh) for n in range(lo, hi + 1) for gw in range(1, n + 1) for gh in range(1, n + 1)
         if lo <= gw * gh <= hi}
    return sorted(r, key=lambda g: g[0] * g[1])


def closest_grid(w, h, lo, hi):
    aspect = w / h
    best, best_diff = (1, 1), float("inf")
    for gw, gh in target_ratios(lo, hi):
        d = abs(aspect - gw / gh)
        if d < best_diff:
            best, best_diff = (gw, gh), d
        elif d == best_diff and w * h > 0.5 * TILE * TILE * gw * gh:
            best = (gw, gh)
    return best


def tokens(w, h):
    return math.ceil((h // PATCH) / MERGE) * math.ceil((w // PATCH) / MERGE)


def expected(w, h, min_tiles, use_thumbnail, splitting, tol):
    """The CLI line transformers' rules give: 'WxH N layout' or 'WxH refused'."""
    lo, hi = (min_tiles, MAX_TILES) if splitting else (1, 1)
    tw, th = smart_resize(h, w)
    thumb = tokens(tw, th)
    if too_large(h, w, tol) and not lo == hi == 1:
        gw, gh = closest_grid(w, h, lo, hi)
        if gw * gh == 1:
            # one 512² tile of features, single-image text of the smart-resize size
            if thumb != tokens(TILE, TILE):
                return "%dx%d refused" % (w, h)
            return "%dx%d %d <|image_start|> [%d rows] <|image_end|>" % (w, h, thumb, thumb)
        per_tile = tokens(TILE, TILE)
        parts = ["<|image_start|>"]
        for r in range(gh):
            for c in range(gw):
                parts.append("<|img_row_%d_col_%d|> [%d rows]" % (r + 1, c + 1, per_tile))
        n = gw * gh * per_tile
        if use_thumbnail:
            parts.append("<|img_thumbnail|> [%d rows]" % thumb)
            n += thumb
        parts.append("<|image_end|>")
        return "%dx%d %d %s" % (w, h, n, " ".join(parts))
    return "%dx%d %d <|image_start|> [%d rows] <|image_end|>" % (w, h, thumb, thumb)


def sizes():
    # a coarse grid over the whole range, with values next to the rounding and tiling
    # boundaries, and a dense square-ish band where min_tiles 1 picks the 1×1 grid
    side = sorted({33, 47, 64, 80, 100, 111, 127, 256, 300, 383, 400, 480, 511, 512, 513, 600,
                   626, 627, 640, 700, 723, 724, 725, 737, 768, 800, 900, 1000, 1023, 1024,
                   1025, 1100, 1280, 1440, 1500, 1920, 2048, 2500, 3000, 3500, 4000})
    out = {(w, h) for w in side for h in side if h <= 3000}
    out |= {(w, h) for w in range(596, 760, 7) for h in range(590, 760, 5)}
    out.add((33, 47))
    out.add((4000, 3000))
    return sorted(out)


def main():
    all_sizes = sizes()
    args = ["%dx%d" % s for s in all_sizes]
    n_cases = n_refused = fails = 0
    for min_tiles in (1, 2):
        for use_thumbnail in (True, False):
            for splitting in (True, False):
                for tol in (1.5, 2.0):
                    cmd = [CLI, "embed-image", "--mmproj", MMPROJ, "-m", MODEL, "--plan",
                           "--min-tiles", str(min_tiles), "--max-pixels-tolerance", str(tol),
                           "--use-thumbnail" if use_thumbnail else "--no-thumbnail",
                           "--do-tiling" if splitting else "--no-tiling"] + args
                    res = subprocess.run(cmd, capture_output=True, text=True)
                    got = res.stdout.splitlines()
                    what = "min_tiles %d thumbnail %s splitting %s tolerance %g" % (
                        min_tiles, use_thumbnail, splitting, tol)
                    if len(got) != len(all_sizes):
                        print("FAIL %s: %d lines for %d sizes\n%s" % (what, len(got), len(all_sizes),
                                                                    res.stderr[-2000:]))
                        fails += 1
                        continue
                    any_refused = False
                    for (w, h), line in zip(all_sizes, got):
                        want = expected(w, h, min_tiles, use_thumbnail, splitting, tol)
                        n_cases += 1
                        if want.endswith(" refused"):
                            n_refused += 1
                            any_refused = True
                            ok = line.startswith(want + ":")
                        else:
                            ok = line.rstrip() == want
                        if not ok:
                            fails += 1
                            if fails <= 10:
                                print("FAIL %s %dx%d:\n  cli:          %s\n  transformers: %s"
                                      % (what, w, h, line, want))
                    if res.returncode != (1 if any_refused else 0):
                        print("FAIL %s: exit status %d" % (what, res.returncode))
                        fails += 1
    print("%d plans compared (%d sizes × 16 settings), %d refused as transformers is "
          "inconsistent there, %d mismatches" % (n_cases, len(all_sizes), n_refused, fails))
    # the refusals must exist (the band is real) and only come with min_tiles 1
    if n_refused == 0:
        print("FAIL: no size in the min_tiles 1 band was refused")
        fails += 1
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
