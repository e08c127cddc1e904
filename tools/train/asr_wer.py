"""asr_wer.py — word error rate and the held-out sets' truth files (standard library only, so
the WER test runs without numpy or torch)."""
import os


def words(text):
    """Normalized words (the WER's and the CTC head's units)."""
    return [w for w in "".join(c if c.isalnum() or c == " " else " " for c in text.lower()).split()]


def read_truth(d):
    with open(os.path.join(d, "truth.tsv")) as f:
        next(f)
        return [ln.rstrip("\n").split("\t") for ln in f if ln.strip()]


def wer(ref_words, hyp_words):
    """Word edit distance (substitutions + deletions + insertions)."""
    R, H = len(ref_words), len(hyp_words)
    d = list(range(H + 1))
    for i in range(1, R + 1):
        prev, d[0] = d[0], i
        for j in range(1, H + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (ref_words[i - 1] != hyp_words[j - 1]))
            prev, d[j] = d[j], cur
    return d[H]
