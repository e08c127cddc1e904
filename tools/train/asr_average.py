#!/usr/bin/python3
"""asr_average.py — the mean of several weight sets of one asr_train.py run (its snap/*.pt
snapshots, or checkpoints' "model"), exported as an LFM2-Audio pair and scored on a directory
with a truth.tsv (the run's dev/) through `lfm2 transcribe`.

    /usr/bin/python3 tools/train/asr_average.py --work WORKDIR --lfm2 build/tools/lfm2 --out DIR
        [--dev DIR] [--save MEAN.pt] SNAPSHOT.pt [SNAPSHOT.pt ...]

--save also writes the mean as a checkpoint asr_train.py --init reads.

Weights close together on one trajectory (the last snapshots of a run at a low rate) average
into a point between them, often flatter and better on new voices than any one of them
(Izmailov et al. 2018, stochastic weight averaging). The convolution modules' batch-norm
running statistics average too (they are means themselves).
"""
import argparse
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import asr  # noqa: E402
import asr_eval  # noqa: E402
import speech  # noqa: E402
from asr_train import export  # noqa: E402
from tokenizer import Tokenizer  # noqa: E402


def load_weights(path):
    ck = torch.load(path, map_location="cpu")
    return ck["model"] if "model" in ck else ck


def average(paths):
    sds = [load_weights(p) for p in paths]
    out = {}
    for k, v in sds[0].items():
        if v.is_floating_point():
            out[k] = sum(sd[k] for sd in sds) / len(sds)
        else:   # counters (num_batches_tracked): the last one's
            out[k] = sds[-1][k]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, help="the run's WORKDIR (its vocab.gguf, and dev/ by default)")
    ap.add_argument("--lfm2", required=True)
    ap.add_argument("--out", required=True, help="where the averaged pair is written")
    ap.add_argument("--dev", help="score on this directory (default WORKDIR/dev)")
    ap.add_argument("--save", help="also write the mean here, for asr_train.py --init")
    ap.add_argument("--preset", default=asr.DEFAULT_PRESET, choices=sorted(asr.PRESETS))
    ap.add_argument("--type", default="f16", choices=["f32", "f16"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("weights", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    vocab = os.path.join(a.work, "vocab.gguf")
    tok = Tokenizer(vocab)
    model = asr.build(a.preset, len(tok.tokens), asr.word_tokens(tok, speech.vocabulary()))
    mean = average(a.weights)
    model.load_state_dict(mean)
    if a.save:
        torch.save({"model": mean}, a.save)
    os.makedirs(a.out, exist_ok=True)
    txt, mm = export(model, a.out, vocab, "LFM2-Audio synthetic-speech ASR (trained by tools/train)", a.type)
    print("asr-average: %d weight sets → %s, %s" % (len(a.weights), txt, mm), file=sys.stderr)
    dev = a.dev or os.path.join(a.work, "dev")
    errs, n_ref, pv = asr_eval.evaluate(a.lfm2, txt, mm, dev, a.threads, quiet=True)
    print("asr-average: %s WER %.1f %% (%s)" % (dev, 100.0 * errs / max(n_ref, 1), ", ".join(
        "%s %.1f %%" % (v, 100.0 * e / max(n, 1)) for v, (e, n) in sorted(pv.items()))))


if __name__ == "__main__":
    main()
