#!/usr/bin/python3
"""parity.py — the PyTorch models of this directory, exported with export.py, against the C
engine: a third implementation of the LFM2 backbone and the LFM2-VL encoder checked before any
training. Random weights (seeded), F32 files:

  * logits of a chat prompt: `lfm2 logits` vs the PyTorch backbone in float64 — max |Δ| within
    the text fixtures' tolerance (1e-4, tests/data/text/*/logits.json for F32 files) and the
    same argmax on every row;
  * image embeddings: `lfm2 embed-image` (default preprocessing) vs the PyTorch encoder on the
    pixels of vision.py's plan (PIL resizing) — within the vision fixtures' tolerance (max |Δ|
    <= 2e-3, mean |Δ| < 2e-4, tests/vision/test-embed.c), the same token counts, for a picture
    used as is, one scaled up, one scaled down and a tiled one;
  * the image's token layout (vision.layout: markers and rows) = the engine's;
  * tokenizer.py's ids for the prompt pieces and captions = `lfm2 tokenize`'s.

Exit status 0 when everything agrees, 1 otherwise, 77 (skip) when torch is not importable.

    /usr/bin/python3 tools/train/parity.py --lfm2 build/tools/lfm2 [--preset vl-synthetic] [--keep DIR]
"""
import argparse
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError as e:   # meson: exit code 77 = skipped
    print("parity: skipped, %s (install python3-torch python3-numpy python3-pil)" % e)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkpoint  # noqa: E402
import export  # noqa: E402
import vision  # noqa: E402
from lfm2vl import encode_chunks  # noqa: E402
from tokenizer import DEFAULT_VOCAB, Tokenizer  # noqa: E402

LOGIT_TOL = 1e-4
EMBD_MAX, EMBD_MEAN = 2e-3, 2e-4
SIZES = [(256, 256), (200, 120), (640, 360), (1100, 500)]   # as is, up, down, tiled 2×1 + thumbnail


def run(cmd, stderr=False):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("parity: %s failed:\n%s" % (" ".join(cmd), r.stderr))
    return (r.stdout, r.stderr) if stderr else r.stdout


def layout_text(tok, ids):
    """vision.layout() as `lfm2 embed-image -m` prints it: marker texts and '[N rows]'."""
    out, i = [], 0
    while i < len(ids):
        j = i
        while j < len(ids) and ids[j] < 0:
            j += 1
        if j > i:
            out.append("[%d rows]" % (j - i))
            i = j
        else:
            out.append(tok.tokens[ids[i]])
            i += 1
    return " ".join(out)


def test_picture(w, h):
    """A deterministic picture with structure at every scale (gradients, a grid, a disc)."""
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 // max(w - 1, 1)).astype(np.uint8)
    g = (y * 255 // max(h - 1, 1)).astype(np.uint8)
    b = (((x // 24 + y // 24) % 2) * 200 + ((x - w / 3) ** 2 + (y - h / 2) ** 2 < (h / 4) ** 2) * 55).astype(np.uint8)
    return np.stack([r, g, b], -1)


def write_ppm(path, a):
    with open(path, "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (a.shape[1], a.shape[0]))
        f.write(np.ascontiguousarray(a).tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfm2", required=True, help="the lfm2 command-line program")
    ap.add_argument("--preset", action="append", help="model shapes (default: every preset)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", help="write the files here instead of a temporary directory")
    a = ap.parse_args()
    torch.set_num_threads(2)
    from PIL import Image

    fails = 0
    with tempfile.TemporaryDirectory() as tmp:
        d = a.keep or tmp
        os.makedirs(d, exist_ok=True)
        tok = Tokenizer(DEFAULT_VOCAB)
        for preset in a.preset or list(checkpoint.PRESETS):
            model = checkpoint.build(preset)
            model.init_weights(a.seed)
            model.eval()
            txt, mm = os.path.join(d, preset + ".gguf"), os.path.join(d, preset + "-mmproj.gguf")
            export.export_vl(model, txt, mm, name="LFM2-VL %s random seed%d" % (preset, a.seed))

            # 1. logits of a prompt (a user turn and an answer) in float64
            ids = tok.encode("<|im_start|>user\nDescribe this image in one sentence.<|im_end|>\n"
                             "<|im_start|>assistant\ntwo red circles left of a blue square<|im_end|>", bos=True)
            run([a.lfm2, "logits", "-m", txt, "--tokens", ",".join(map(str, ids)), "-o", os.path.join(d, "l.f32"),
                 "-t", "2"])
            got = np.fromfile(os.path.join(d, "l.f32"), dtype=np.float32).reshape(len(ids), -1)
            with torch.no_grad():
                ref = model.lm.double().logits_for_ids(torch.tensor(ids)[None])[0].numpy()
            model.lm.float()
            md = float(np.abs(got - ref).max())
            am = int((got.argmax(1) == ref.argmax(1)).sum())
            ok = md <= LOGIT_TOL and am == len(ids)
            fails += not ok
            print("%s %s: logits of %d tokens: max |Δ| %.2e (tol %.0e), argmax equal %d/%d" %
                  ("ok  " if ok else "FAIL", preset, len(ids), md, LOGIT_TOL, am, len(ids)))

            # 2. image embeddings
            for w, h in SIZES:
                pic = test_picture(w, h)
                path = os.path.join(d, "p%dx%d.ppm" % (w, h))
                write_ppm(path, pic)
                out = os.path.join(d, "e.f32")
                n = int(run([a.lfm2, "embed-image", "--mmproj", mm, "--image", path, "-o", out, "-t", "2"]).split()[0])
                got = np.fromfile(out, dtype=np.float32)
                plan = vision.make_plan(w, h)
                with torch.no_grad():
                    ref = encode_chunks(model.vision, plan, vision.chunk_pixels(Image.fromarray(pic), plan)).numpy()
                if n != plan.n_tokens or got.size != ref.size:
                    print("FAIL %s %dx%d: %d image tokens from the engine, %d here" % (preset, w, h, n, plan.n_tokens))
                    fails += 1
                    continue
                dd = np.abs(got - ref.reshape(-1))
                ok = dd.max() <= EMBD_MAX and dd.mean() < EMBD_MEAN
                fails += not ok
                print("%s %s: %dx%d -> %d tokens%s: max |Δ| %.2e, mean |Δ| %.2e (tol %.0e / %.0e), rms %.3f" %
                      ("ok  " if ok else "FAIL", preset, w, h, n, " (%dx%d tiles + thumbnail)" % (plan.cols, plan.rows)
                       if plan.tiled else "", dd.max(), dd.mean(), EMBD_MAX, EMBD_MEAN, float(np.sqrt((ref ** 2).mean()))))

            # 3. the image's token layout (markers by text, rows) as the engine lays it out
            bad = 0
            for w, h in SIZES:
                _, err = run([a.lfm2, "embed-image", "--mmproj", mm, "-m", txt, "--image",
                              os.path.join(d, "p%dx%d.ppm" % (w, h)), "-o", os.path.join(d, "e.f32")], stderr=True)
                got = [ln.split(": ", 1)[1] for ln in err.splitlines() if ln.startswith("layout:") or ln.startswith("layout (")]
                want = layout_text(tok, vision.layout(tok, vision.make_plan(w, h)))
                if got != [want]:
                    bad += 1
                    print("FAIL %s %dx%d: layout %r, engine %r" % (preset, w, h, want, got))
            fails += bad
            print("%s %s: image token layouts of %d pictures" % ("ok  " if not bad else "FAIL", preset, len(SIZES)))

        # 4. tokenizer
        texts = ["<|im_start|>user\n", "Describe this image.<|im_end|>\n<|im_start|>assistant\n",
                 "two red circles left of a blue square", "SMPTE colour bars", "a white ball on a black background"]
        bad = 0
        for s in texts:
            ref = [int(x) for x in run([a.lfm2, "tokenize", "-m", DEFAULT_VOCAB, "-p", s]).split()]
            bad += tok.encode(s) != ref
        fails += bad > 0
        print("%s tokenizer: %d/%d texts tokenized as the engine does" % ("ok  " if not bad else "FAIL",
                                                                         len(texts) - bad, len(texts)))
    print("parity: %s" % ("all agree" if not fails else "%d mismatches" % fails))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
