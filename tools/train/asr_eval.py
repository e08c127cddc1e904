#!/usr/bin/python3
"""asr_eval.py — word error rate of an LFM2-Audio pair through the C engine (`lfm2 transcribe`,
the same code path as every user of the model) on a directory of clips with a truth.tsv
(file, voice, SNR, text), and the held-out test set generator.

    /usr/bin/python3 tools/train/asr_eval.py --make-testset DIR [--n 60] [--seed 12345]
    /usr/bin/python3 tools/train/asr_eval.py --lfm2 build/tools/lfm2 -m TEXT.gguf --mmproj MMPROJ.gguf DIR
        [--max-wer PERCENT] [-v]

WER = (substitutions + deletions + insertions) / reference words over all clips, words
lower-cased without punctuation. With --max-wer the exit status is 1 when the WER is higher.
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import asr_wer  # noqa: E402


def transcribe(lfm2, model, mmproj, files, threads):
    r = subprocess.run([lfm2, "transcribe", "-m", model, "--mmproj", mmproj, "--format", "json", "-t", str(threads)]
                       + files, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("asr-eval: lfm2 transcribe failed:\n%s" % r.stderr)
    out = {}
    for ln in r.stdout.splitlines():
        if ln.strip():
            j = json.loads(ln)
            out[j["file"]] = j["text"]
    return out


def evaluate(lfm2, model, mmproj, d, threads=2, verbose=False, rows=None, quiet=False):
    """(errors, reference words, {voice: [errors, words]}) over truth.tsv's clips (or `rows` of it)."""
    truth = rows if rows is not None else asr_wer.read_truth(d)
    files = [os.path.join(d, row[0]) for row in truth]
    hyp = transcribe(lfm2, model, mmproj, files, threads)
    errs = total = 0
    per_voice = {}
    for (name, voice, snr, text), path in zip(truth, files):
        ref, got = asr_wer.words(text), asr_wer.words(hyp.get(path, ""))
        e = asr_wer.wer(ref, got)
        errs += e
        total += len(ref)
        pv = per_voice.setdefault(voice.split("+")[0], [0, 0])
        pv[0] += e
        pv[1] += len(ref)
        if verbose or (e and not quiet):
            print("%s %-26s %5s dB  %d err  ref: %s | hyp: %s" % (name, voice, snr, e, text, " ".join(got)))
    return errs, total, per_voice


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", nargs="?")
    ap.add_argument("--make-testset", metavar="DIR")
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--lfm2")
    ap.add_argument("-m", "--model")
    ap.add_argument("--mmproj")
    ap.add_argument("--max-wer", type=float)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    if a.make_testset:
        import speech   # numpy, espeak-ng, flite
        rows = speech.make_testset(a.make_testset, a.n, a.seed)
        print("asr-eval: wrote %d held-out clips to %s" % (len(rows), a.make_testset))
        return 0
    if not (a.dir and a.lfm2 and a.model and a.mmproj):
        ap.error("need DIR, --lfm2, -m and --mmproj (or --make-testset DIR)")
    errs, total, per_voice = evaluate(a.lfm2, a.model, a.mmproj, a.dir, a.threads, a.verbose)
    w = 100.0 * errs / max(total, 1)
    for v, (e, n) in sorted(per_voice.items()):
        print("  %-20s WER %5.1f %% (%d/%d)" % (v, 100.0 * e / max(n, 1), e, n))
    ok = a.max_wer is None or w <= a.max_wer
    print("%s WER %.1f %% (%d errors / %d words, %d clips)%s" %
          ("ok  " if ok else "FAIL", w, errs, total, len(asr_wer.read_truth(a.dir)),
           "" if a.max_wer is None else ", limit %.1f %%" % a.max_wer))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
