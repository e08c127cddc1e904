#!/usr/bin/python3
"""train.py — trains the tiny LFM2-VL captioner on synthetic frames and exports it as GGUF.

    /usr/bin/python3 tools/train/train.py --work WORKDIR [--steps N] [--seed S] [--threads 2]

(/usr/bin/python3: Debian's interpreter, which sees python3-torch, python3-pil and python3-numpy;
a pyenv/venv `python3` on PATH does not.)

WORKDIR gets: cache/ (rendered videotestsrc frames), checkpoint.pt (every --ckpt-minutes and at
the end; a run finding it resumes from it), loss.tsv (one line per step), and at the end
lfm2-vl-synthetic-text-f32.gguf + lfm2-vl-synthetic-mmproj-f32.gguf (export.py). A progress
bar goes to stderr. Deterministic from --seed: the weights' initialisation and every batch
(data.py) derive from it, so a resumed run continues exactly; bit-identical results also need
the same --threads (PyTorch's sums are split by thread).
"""
import argparse
import math
import os
import re
import sys
import time

# OpenMP threads that spin while waiting cost 3-6x under a shared machine's load: sleep instead
# (must be set before libgomp starts, i.e. before torch is imported)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkpoint  # noqa: E402
import data  # noqa: E402
import aux  # noqa: E402
import scenes  # noqa: E402
import vision  # noqa: E402
from lfm2vl import prompt_ids  # noqa: E402
from tokenizer import DEFAULT_VOCAB, Tokenizer  # noqa: E402


def lr_at(step, steps, peak, warmup):
    """Linear warm-up, cosine down to 5 % of the peak at `steps`, then 5 % (--extra-steps)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, steps - warmup))
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def caption_weights(tok, caption, n_ids, shape_weight):
    """Per-token loss weights of the caption's n_ids tokens: shape_weight on the tokens of the
    shape words (circle/square, the distinction the model learns last), 1 elsewhere. The
    caption is encoded word by word (each word with its leading space, as the pre-tokenizer
    splits it); all 1 if that does not give the caption's tokens."""
    if shape_weight == 1.0:
        return [1.0] * n_ids
    wt = []
    for word in re.findall(r" ?\S+", caption):
        wt += [shape_weight if word.strip().startswith(tuple(scenes.SHAPES)) else 1.0] * len(tok.encode(word))
    return wt if len(wt) == n_ids else [1.0] * n_ids


def batch_loss(model, tok, seed, step, sizes, cache, patch_budget, grad_tiles, aux_head=None, p_pattern=0.42,
               captions=True, shape_weight=1.0):
    """Cross-entropy of the captions (and the closing <|im_end|>) of one batch, and the
    auxiliary heads' loss on the thumbnails' rows (0 without a head). captions=False: the
    encoder and the auxiliary heads only (no tiles, no backbone)."""
    rng, (w, h), plan, bsz, prompt, system, scenes_only = data.batch_spec(seed, step, sizes, patch_budget)
    samples = [data.sample(rng, w, h, cache, 0.0 if scenes_only else p_pattern) for _ in range(bsz)]
    chunks = [vision.chunk_pixels(img, plan) for img, _, _ in samples]
    enc = model.vision
    E = enc.cfg.n_embd_text
    rows = enc(vision.to_input([c[-1] for c in chunks]))                        # [bsz, n_thumb, E]
    aux_loss = torch.zeros(())
    if aux_head is not None:
        dense = [aux.dense_labels(c, o, w, h, plan.thumb_w, plan.thumb_h) for _, c, o in samples]
        aux_loss = aux_head.loss(rows, [c for _, c, _ in samples], dense)
    if not captions:
        return torch.zeros(()), aux_loss, bsz, (w, h)
    if plan.n_tiles:
        with torch.set_grad_enabled(grad_tiles and torch.is_grad_enabled()):
            tiles = enc(vision.to_input([t for c in chunks for t in c[:-1]]))
        rows = torch.cat([tiles.reshape(bsz, -1, E), rows], 1)
    ids = prompt_ids(tok, plan, prompt, system)
    t_ids = torch.tensor(ids)
    img_pos = (t_ids < 0).nonzero().squeeze(1)
    x = model.lm.embed(t_ids.clamp(min=0)).unsqueeze(0).repeat(bsz, 1, 1)
    x = x.index_put((torch.arange(bsz)[:, None], img_pos[None, :]), rows)
    tgts = [tok.encode(c) + [tok.eos] for _, c, _ in samples]
    L = max(len(t) for t in tgts)
    tgt = torch.full((bsz, L), tok.pad, dtype=torch.long)
    mask = torch.zeros(bsz, L)
    for i, t in enumerate(tgts):
        tgt[i, :len(t)] = torch.tensor(t)
        mask[i, :len(t)] = torch.tensor(caption_weights(tok, samples[i][1], len(t) - 1, shape_weight) + [1.0])
    x = torch.cat([x, model.lm.embed(tgt[:, :-1])], 1)
    T0 = len(ids)
    hid = model.lm.hidden(x)[:, T0 - 1:]
    logits = model.lm.logits(hid)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), reduction="none")
    loss = (ce * mask.reshape(-1)).sum() / mask.sum()
    return loss, aux_loss, bsz, (w, h)


def validate(model, tok, work, n=40):
    """Greedy exact-caption accuracy on a small held-out set (heldout.py, rendered once)."""
    import heldout
    from PIL import Image
    from lfm2vl import greedy_caption
    d = os.path.join(work, "val")
    if not os.path.exists(os.path.join(d, "truth.tsv")):
        heldout.generate(d, seed=999, n_patterns=n // 2, n_scenes=n - n // 2)
    model.eval()
    right = {"pattern": [0, 0], "scene": [0, 0]}
    for name, w, h, kind, truth in heldout.read_truth(d):
        img = Image.open(os.path.join(d, name)).convert("RGB")
        plan = vision.make_plan(img.width, img.height)
        got = greedy_caption(model, tok, plan, vision.chunk_pixels(img, plan), data.PROMPTS[0])
        right[kind][0] += got == truth
        right[kind][1] += 1
    return "validation: patterns %d/%d, scenes %d/%d" % (*right["pattern"], *right["scene"])


def bar(frac, width=28):
    n = int(frac * width)
    return "[" + "#" * n + "." * (width - n) + "]"


def fmt_time(s):
    s = int(s)
    return "%d:%02d:%02d" % (s // 3600, s // 60 % 60, s % 60)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, help="work directory (cache, checkpoint, log, output)")
    ap.add_argument("--preset", default="vl-synthetic", choices=sorted(checkpoint.PRESETS))
    ap.add_argument("--steps", type=int, default=3000, help="steps of the learning-rate schedule")
    ap.add_argument("--extra-steps", type=int, default=0,
                    help="more steps after the schedule (may grow when resuming)")
    ap.add_argument("--extra-lr", type=float, default=0.0,
                    help="the extra steps' learning rate, falling linearly from this to the schedule's final one "
                         "from --extra-from on (default: the final one throughout)")
    ap.add_argument("--extra-from", type=int, default=0, help="the step the --extra-lr ramp starts at")
    ap.add_argument("--vision-steps", type=int, default=0,
                    help="the first N steps train the encoder and the auxiliary heads alone")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--patch-budget", type=int, default=4096, help="encoder patches per step (sets the batch size)")
    ap.add_argument("--vision-patch-budget", type=int, default=6144, help="the same for the --vision-steps")
    ap.add_argument("--grad-tiles", action="store_true", help="backpropagate through tile encodings too")
    ap.add_argument("--aux-weight", type=float, default=0.5, help="weight of the auxiliary head's loss (aux.py); 0: none")
    ap.add_argument("--p-pattern", type=float, default=0.3, help="share of videotestsrc frames in batches of the cached sizes (the rest: scenes)")
    ap.add_argument("--eval-every", type=int, default=500, help="greedy accuracy on a small validation set every N steps")
    ap.add_argument("--shape-weight", type=float, default=1.0,
                    help="loss weight of the shape words' tokens (circle/square; e.g. with --extra-steps)")
    ap.add_argument("--yuv-colors", action="store_true",
                    help="also the 'colors' pattern as an I420 pipeline shows it (e.g. with --extra-steps)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ckpt-minutes", type=float, default=3.0)
    ap.add_argument("--vocab", default=DEFAULT_VOCAB, help="GGUF whose tokenizer the model uses")
    ap.add_argument("--no-export", action="store_true")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    os.makedirs(a.work, exist_ok=True)
    ck_path = os.path.join(a.work, "checkpoint.pt")
    log_path = os.path.join(a.work, "loss.tsv")
    tok = Tokenizer(a.vocab)

    model = checkpoint.build(a.preset)
    model.init_weights(a.seed)
    model.vision.init_positions_sincos()    # a head start on where and what (vision.py)
    model.vision.init_patch_edges()
    torch.manual_seed(a.seed)
    aux_head = aux.AuxHead(model.lm.cfg.n_embd) if a.aux_weight > 0 else None
    params = list(model.parameters()) + (list(aux_head.parameters()) if aux_head else [])
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.98), weight_decay=0.01)
    start, elapsed0 = 0, 0.0
    meta = {"preset": a.preset, "seed": a.seed, "steps": a.steps, "lr": a.lr, "vocab": os.path.abspath(a.vocab),
            "patch_budget": a.patch_budget, "threads": a.threads, "grad_tiles": a.grad_tiles,
            "aux_weight": a.aux_weight, "vision_steps": a.vision_steps, "p_pattern": a.p_pattern,
            "vision_patch_budget": a.vision_patch_budget, "step": 0,
            "elapsed": 0.0, "samples": 0, "name": "LFM2-VL synthetic-captions (trained by tools/train)"}
    if os.path.exists(ck_path):
        ck = checkpoint.load(ck_path)
        for k in ("preset", "seed", "steps", "vision_steps", "lr", "patch_budget", "vision_patch_budget",
                  "grad_tiles", "aux_weight", "p_pattern"):
            if ck["meta"][k] != meta[k]:
                sys.exit("train: %s was made with %s=%r, not %r: use another --work or the same options" %
                         (ck_path, k, ck["meta"][k], meta[k]))
        model.load_state_dict(ck["model"])
        if aux_head is not None:
            aux_head.load_state_dict(ck["aux"])
        opt.load_state_dict(ck["opt"])
        meta = ck["meta"]
        start, elapsed0 = meta["step"], meta["elapsed"]
        print("train: resuming %s at step %d (%s trained)" % (ck_path, start, fmt_time(elapsed0)), file=sys.stderr)

    sizes = data.size_pool(a.seed)
    cache = data.PatternCache(os.path.join(a.work, "cache"), a.seed, yuv=a.yuv_colors)
    t0 = time.time()
    data.preload(sizes, cache, log=lambda s: print("\r" + s, end="", file=sys.stderr))
    print(" (%.0f s)" % (time.time() - t0), file=sys.stderr)

    log = open(log_path, "a" if start else "w")
    if not start:
        log.write("step\telapsed_s\tloss\taux_loss\tlr\tbatch\twidth\theight\n")
    t_start, t_ck = time.time() - elapsed0, time.time()
    ema = None
    model.train()
    total = a.steps + a.extra_steps
    for step in range(start, total):
        lr = lr_at(step, a.steps, a.lr, a.warmup)
        if a.extra_lr and step >= max(a.steps, a.extra_from):
            t = (step - max(a.steps, a.extra_from)) / max(1, total - max(a.steps, a.extra_from))
            lr = a.extra_lr + (lr - a.extra_lr) * t
        for g in opt.param_groups:
            g["lr"] = lr
        joint = step >= a.vision_steps
        loss, aux_loss, bsz, (w, h) = batch_loss(model, tok, a.seed, step, sizes, cache,
                                                 a.patch_budget if joint else a.vision_patch_budget, a.grad_tiles, aux_head,
                                                 a.p_pattern, captions=joint, shape_weight=a.shape_weight)
        opt.zero_grad(set_to_none=True)
        (loss + a.aux_weight * aux_loss).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        meta["samples"] += bsz
        el = time.time() - t_start
        lv = float(loss)
        if joint:
            ema = lv if ema is None else 0.98 * ema + 0.02 * lv
        log.write("%d\t%.1f\t%.5f\t%.5f\t%.2e\t%d\t%d\t%d\n" % (step, el, lv, float(aux_loss), lr, bsz, w, h))
        done = step + 1 - start
        eta = (el - elapsed0) / done * (total - step - 1)
        print("\r%s step %d/%d %s loss %.4f (avg %.4f) aux %.3f %s elapsed %s eta %s   " %
              (bar((step + 1) / total), step + 1, total, "joint " if joint else "vision", lv, ema or 0.0,
               float(aux_loss),
               "%4dx%-4d" % (w, h), fmt_time(el), fmt_time(eta)), end="", file=sys.stderr)
        if a.eval_every and (step + 1) % a.eval_every == 0 and step >= a.vision_steps:
            print("\n" + validate(model, tok, a.work), file=sys.stderr)
            model.train()
        if time.time() - t_ck > a.ckpt_minutes * 60 or step + 1 == total:
            meta.update(step=step + 1, elapsed=el)
            log.flush()
            checkpoint.save(ck_path, model, opt, meta, aux=aux_head.state_dict() if aux_head else None)
            t_ck = time.time()
    print(file=sys.stderr)
    log.close()
    if a.eval_every and start < total and total % a.eval_every:
        print(validate(model, tok, a.work), file=sys.stderr)
    meta.update(step=max(start, total))
    print("train: %d steps, %d samples, %s" % (meta["step"], meta["samples"], fmt_time(meta["elapsed"])), file=sys.stderr)
    if not a.no_export:
        import export
        txt = os.path.join(a.work, "lfm2-vl-synthetic-text-f32.gguf")
        mm = os.path.join(a.work, "lfm2-vl-synthetic-mmproj-f32.gguf")
        model.eval()
        export.export_vl(model, txt, mm, a.vocab, meta["name"])
        print("train: wrote %s and %s" % (txt, mm), file=sys.stderr)


if __name__ == "__main__":
    main()
