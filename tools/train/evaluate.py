#!/usr/bin/env python3
"""evaluate.py — exact-caption accuracy on a held-out set (heldout.py), through the C engine's
`lfm2 caption` (greedy) or, with --checkpoint, through the PyTorch model (needs torch).

    python3 tools/train/evaluate.py --set DIR --lfm2 build/tools/lfm2 --model T.gguf --mmproj M.gguf
    /usr/bin/python3 tools/train/evaluate.py --set DIR --checkpoint WORK/checkpoint.pt

Prints one line per miss and a summary (overall, patterns, scenes); --min-accuracy A makes the
exit status 1 when the overall accuracy is below A (a fraction).
"""
import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import heldout  # noqa: E402

PROMPT = "Describe this image."


def caption_c(lfm2, model, mmproj, path, threads=2):
    r = subprocess.run([lfm2, "caption", "-m", model, "--mmproj", mmproj, "--image", path, "-p", PROMPT,
                        "--temp", "0", "-n", "48", "-t", str(threads)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("lfm2 caption %s failed:\n%s" % (path, r.stderr))
    return " ".join(r.stdout.split())


def captioner_torch(checkpoint_path):
    import torch
    from PIL import Image
    import checkpoint
    import vision
    from lfm2vl import greedy_caption
    from tokenizer import Tokenizer
    torch.set_num_threads(2)
    model, meta = checkpoint.load_model(checkpoint_path)
    model.eval()
    tok = Tokenizer(meta["vocab"])

    def cap(path):
        img = Image.open(path).convert("RGB")
        plan = vision.make_plan(*img.size)
        return greedy_caption(model, tok, plan, vision.chunk_pixels(img, plan), PROMPT)
    return cap


def score(rows, captions, out=sys.stdout):
    tot = {"pattern": [0, 0], "scene": [0, 0]}
    for (name, w, h, kind, truth), got in zip(rows, captions):
        ok = got == truth
        tot[kind][0] += ok
        tot[kind][1] += 1
        if not ok:
            print("miss %s (%sx%s): %r, expected %r" % (name, w, h, got, truth), file=out)
    right = sum(v[0] for v in tot.values())
    n = sum(v[1] for v in tot.values())
    acc = right / max(n, 1)
    print("accuracy %.1f %% (%d/%d): patterns %d/%d, scenes %d/%d" %
          (100 * acc, right, n, tot["pattern"][0], tot["pattern"][1], tot["scene"][0], tot["scene"][1]), file=out)
    return acc


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", required=True, help="a directory written by heldout.py")
    ap.add_argument("--lfm2")
    ap.add_argument("--model")
    ap.add_argument("--mmproj")
    ap.add_argument("--checkpoint")
    ap.add_argument("--min-accuracy", type=float, default=0.0)
    a = ap.parse_args()
    rows = heldout.read_truth(a.set)
    if a.checkpoint:
        cap = captioner_torch(a.checkpoint)
    elif a.lfm2 and a.model and a.mmproj:
        def cap(path):
            return caption_c(a.lfm2, a.model, a.mmproj, path)
    else:
        ap.error("give --checkpoint, or --lfm2 with --model and --mmproj")
    got = [cap(os.path.join(a.set, r[0])) for r in rows]
    acc = score(rows, got)
    return 0 if acc >= a.min_accuracy else 1


if __name__ == "__main__":
    sys.exit(main())
