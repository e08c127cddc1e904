#!/usr/bin/python3
"""asr_stream.py — the held-out clips as ONE live stream through lfm2asr, against the same clips
transcribed one file at a time by `lfm2 transcribe`: the check that voice-activity segmentation,
windows and timestamps neither cut nor repeat words.

    python3 tools/train/asr_stream.py --lfm2 build/tools/lfm2 -m TEXT.gguf --mmproj MMPROJ.gguf DIR
        [--gap 1.0] [--max-extra 2] [--first N] [--offline] [-v]
    python3 tools/train/asr_stream.py --write OUT.wav [--first N] DIR


The clips of DIR (truth.tsv) are joined with --gap seconds of digital silence between them into
one WAV, played in real time by pipelines/live-transcription.sh (filesrc ─ … ─ identity
sync=true ─ lfm2asr). Each final text line is given to the clip whose span holds its start
time (the time its speech began), so a text stamped outside every clip, a word repeated in
two utterances or a clip cut in two all count as errors. Exit status 1 when the stream's WER
is more than --max-extra points above the files' WER. --first N takes the first N clips only (for
both figures; the voices alternate). --offline gives the joined WAV to `lfm2 transcribe` instead
(the same voice-activity cuts, seconds instead of minutes: the check to run on many clips, e.g.
to compare training runs on a dev set; it matched lfm2asr within 0.4 points). --write only joins the clips into OUT.wav and lists each clip's span and
text in OUT.txt (the bundled demo clip). Standard library only (no numpy, no torch): the meson
test `trained-transcribe-live` runs it.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import wave

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import asr_eval  # noqa: E402
import asr_wer  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
LINE = re.compile(r"^\[(\d\d):(\d\d):(\d\d)\.(\d\d\d)\] (.*)$")


def join_clips(d, names, gap, out):
    """One 16 kHz mono WAV of the clips with `gap` s of silence before each; the clips' spans [s]."""
    spans, t = [], 0.0
    with wave.open(out, "wb") as o:
        o.setnchannels(1)
        o.setsampwidth(2)
        o.setframerate(16000)
        for name in names:
            with wave.open(os.path.join(d, name)) as f:
                if (f.getnchannels(), f.getsampwidth(), f.getframerate()) != (1, 2, 16000):
                    raise SystemExit("asr-stream: %s is not 16-bit mono 16 kHz" % name)
                pcm = f.readframes(f.getnframes())
                n = f.getnframes()
            o.writeframes(b"\0\0" * int(gap * 16000))
            t += int(gap * 16000) / 16000.0
            spans.append((t, t + n / 16000.0))
            o.writeframes(pcm)
            t += n / 16000.0
    return spans


def stream(wav, model, mmproj, threads):
    """(start seconds, text) of every final lfm2asr gave for the WAV played in real time."""
    r = subprocess.run([os.path.join(ROOT, "pipelines", "live-transcription.sh"), "--input", wav,
                        "--model", model, "--mmproj", mmproj, "--threads", str(threads)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("asr-stream: live-transcription.sh failed:\n%s" % r.stderr)
    out = []
    for ln in r.stdout.splitlines():
        m = LINE.match(ln)
        if m and not m.group(5).startswith("…"):
            h, mi, s, ms = (int(x) for x in m.groups()[:4])
            out.append((h * 3600 + mi * 60 + s + ms / 1000.0, m.group(5)))
    return out


SRT_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d),(\d\d\d) --> ")


def offline(lfm2, wav, model, mmproj, threads):
    """(start seconds, text) of every utterance `lfm2 transcribe` cuts from the WAV (its SRT)."""
    r = subprocess.run([lfm2, "transcribe", "-m", model, "--mmproj", mmproj, "--format", "srt", "-t", str(threads),
                        wav], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("asr-stream: lfm2 transcribe failed:\n%s" % r.stderr)
    out = []
    for cue in r.stdout.strip().split("\n\n"):
        lines = cue.splitlines()
        m = SRT_TIME.match(lines[1]) if len(lines) > 2 else None
        if m:
            h, mi, s, ms = (int(x) for x in m.groups())
            out.append((h * 3600 + mi * 60 + s + ms / 1000.0, " ".join(lines[2:])))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--lfm2")
    ap.add_argument("-m", "--model")
    ap.add_argument("--mmproj")
    ap.add_argument("--gap", type=float, default=1.0, help="silence before each clip, seconds")
    ap.add_argument("--max-extra", type=float, default=2.0, help="allowed WER points above the files' WER")
    ap.add_argument("--first", type=int, default=0, help="only the first N clips (0: all)")
    ap.add_argument("--write", metavar="OUT.wav", help="only write the joined clips (and OUT.txt: span, text)")
    ap.add_argument("--offline", action="store_true",
                    help="the joined clips through lfm2 transcribe (same cuts, not real time) instead of lfm2asr")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()

    truth = asr_wer.read_truth(a.dir)[:a.first or None]
    if a.write:
        spans = join_clips(a.dir, [row[0] for row in truth], a.gap, a.write)
        with open(os.path.splitext(a.write)[0] + ".txt", "w") as f:
            f.write("".join("%.2f\t%.2f\t%s\n" % (s, e, row[3]) for (s, e), row in zip(spans, truth)))
        return 0
    if not (a.lfm2 and a.model and a.mmproj):
        ap.error("need --lfm2, -m and --mmproj (or --write)")
    f_errs, n_words, f_voice = asr_eval.evaluate(a.lfm2, a.model, a.mmproj, a.dir, a.threads, rows=truth)
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "stream.wav")
        spans = join_clips(a.dir, [row[0] for row in truth], a.gap, wav)
        finals = (offline(a.lfm2, wav, a.model, a.mmproj, a.threads) if a.offline
                  else stream(wav, a.model, a.mmproj, a.threads))
    hyp = [[] for _ in truth]
    stray = 0
    for t, text in finals:
        k = [i for i, (s, e) in enumerate(spans) if s - a.gap / 2 <= t < e]
        if k:
            hyp[k[0]] += asr_wer.words(text)
        else:   # text stamped in the silence between clips: every word is an insertion
            stray += len(asr_wer.words(text))
            print("stray text at %.2f s: %s" % (t, text))
    s_errs = stray
    s_voice = {}
    for (name, voice, _, text), got in zip(truth, hyp):
        e = asr_wer.wer(asr_wer.words(text), got)
        s_errs += e
        s_voice[voice.split("+")[0]] = s_voice.get(voice.split("+")[0], 0) + e
        if a.verbose or e:
            print("%s %-26s %d err  ref: %s | stream: %s" % (name, voice, e, text, " ".join(got)))
    for v, (e, n) in sorted(f_voice.items()):
        print("  %-20s files WER %5.1f %%, stream %5.1f %% (%d words)" % (v, 100.0 * e / n, 100.0 * s_voice[v] / n, n))
    fw, sw = 100.0 * f_errs / max(n_words, 1), 100.0 * s_errs / max(n_words, 1)
    ok = sw <= fw + a.max_extra
    print("%s files WER %.1f %%, %s WER %.1f %% (%d finals for %d clips, %d words; limit files + %.1f)"
          % ("ok  " if ok else "FAIL", fw, "joined file" if a.offline else "live stream", sw, len(finals), len(truth),
             n_words, a.max_extra))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
