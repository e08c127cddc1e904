#!/usr/bin/python3
"""asr_train.py — trains the tiny LFM2-Audio ASR model (asr.py) on synthetic speech (speech.py)
and exports it as an LFM2-Audio pair: backbone GGUF + lfm2a mmproj GGUF.

    /usr/bin/python3 tools/train/asr_train.py --work WORKDIR --lfm2 build/tools/lfm2
        [--ctc-steps N --ctc-minutes M] [--steps N --minutes M] [--seed S] [--threads 2] [--clips N]
        [--narrow-clips N] [--more-voices N --more-repeat R] [--random-words N --random-repeat R]
        [--vtlp X] [--tight P] [--zeros P] [--init CHECKPOINT] [--dev-n N] [--snap-every N]

(/usr/bin/python3: Debian's interpreter, which sees python3-torch and python3-numpy; espeak-ng
and flite must be installed: apt-get install espeak-ng flite; --more-voices also needs festival
festvox-kdlpc16k festvox-kallpc16k festvox-us-slt-hts.)

Two phases. 1: the encoder alone (FastConformer + adapter) on a CTC loss over the closed
vocabulary's words, read from the adapter rows through the backbone's embeddings of those
words (asr.ASRModel.ctc_logits) — cheap steps that teach the encoder where each word is.
2: the whole model on the transcript's cross-entropy (the engine's prompt, asr.Prompt) plus
--ctc-weight × the same CTC loss, the encoder at --enc-lr, the backbone at --lr. Each phase
has its own warm-up and cosine schedule and its own budget (--ctc-steps/--ctc-minutes,
--steps/--minutes, whichever runs out first).

WORKDIR gets: vocab.gguf (the audio-tiny vocabulary + one token per word), clips/ (the
synthesized utterances, in resumable chunks), val/ (held-out sentences, training voices),
dev/ (held-out sentences, held-out voices: a dev set, not the bundled test clips),
checkpoint.pt (every --ckpt-minutes and at the end of each phase; a run finding it resumes
from it), loss.tsv (one line per step), and at the end lfm2-audio-asr-text-f16.gguf +
lfm2-audio-asr-mmproj-f16.gguf. A progress bar goes to stderr. Every batch derives from --seed
and the step (the noise, silences, levels, speed and the clips drawn), so a resumed run
continues exactly. With a time budget the learning-rate schedule follows max(step/steps,
time/minutes), so the rate is annealed within the budget on a loaded machine (the batches stay
deterministic; the rates, and so the weights, then depend on the timing — leave the minutes 0
for a bit-exact rerun).

Batches: clips of similar length (a window of the pool sorted by length), each resampled by
0.85-1.15 (speed, pitch and formants: new speakers), with 0.05-0.6 s of silence around it, a
random level, noise at 10-30 dB SNR (white, pink, brown or hum; one clip in ten clean) and
padded with the same noise to the longest; one clip in 25 is noise only with an empty
transcript, so silence and noise segments from the VAD yield no text. --vtlp X: each clip's
formants also scaled by 1±X (conformer.formant_warp) and two time and two mel-band masks
(SpecAugment); --tight P: a share P of the clips gets 0-0.3 s of silence each side instead
(the VAD's segments carry 200 ms); --zeros P: 0-0.3 s of digital silence before, and after,
with chance P each (a noisy clip after a silent gap in a stream, cut with the VAD's pad);
--lead-max S: 0.05-S s of noise before the speech instead of 0.05-0.6 s (the clips not --tight).

The pool: --clips utterances, the first --narrow-clips with speech.synth's narrow ranges and
voices drawn uniformly, the last --more-voices with other speakers (half Festival: ked, kal,
slt-hts at varied pitch and duration; half espeak-ng with its other variants too; drawn
--more-repeat times as often), the rest with the wide ones, half of them flite. --random-words N
adds N clips after those whose texts are 1-6 vocabulary words in random order (none a held-out
sentence), spoken with the wide part's voices and drawn --random-repeat times as often: the
template sentences let the decoder guess a word from the ones before it, these do not. --init starts
from another run's weights (a warm start; the optimizer starts anew). --snap-every N keeps the
weights every N joint steps in snap/ and scores dev/ (--dev-n clips) through the engine at
each, into dev.tsv: select or average (asr_average.py) by dev, never by the test clips.
"""
import argparse
import os
import random
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import asr  # noqa: E402
import asr_wer  # noqa: E402
import checkpoint  # noqa: E402
import speech  # noqa: E402
from conformer import log_mel  # noqa: E402
from tokenizer import Tokenizer  # noqa: E402
from train import bar, fmt_time, lr_at  # noqa: E402

CHUNK = 250


def _synth_chunk(args):
    path, seed, idx0, n, kind = args
    rng = random.Random(seed * 1000003 + idx0)
    voices = speech.train_voices()
    flite = [v for v in voices if v[0] == "flite"]
    espeak = [v for v in voices if v[0] == "espeak"]
    if kind == "random":   # vocabulary words in random order, the wide part's voices
        texts = speech.random_words(seed * 7919 + idx0, n)
    else:
        texts = speech.sentences(seed * 7919 + idx0, n, heldout=False)
    out, fest = [], []
    for i, text in enumerate(texts):
        variants = speech.ESPEAK_VARIANTS
        if kind == "more":   # half Festival (ked 3 in 5), half espeak-ng with its other variants too
            if rng.random() < 0.5:
                fest.append((i, text, speech.festival_params(rng, rng.choice(speech.FESTIVAL_VOICES))))
                out.append(None)   # made below, all in one Festival process
                continue
            (eng, v), variants = rng.choice(espeak), speech.ESPEAK_VARIANTS + speech.EXTRA_VARIANTS
        elif kind != "narrow":   # wide, random: half espeak-ng (7 voices × 34 variants), half flite (4, pitch moved)
            eng, v = rng.choice(flite if rng.random() < 0.5 else espeak)
        else:
            eng, v = voices[(idx0 + i) % len(voices)] if rng.random() < 0.5 else rng.choice(voices)
        x, label = speech.synth(text, eng, v, rng, kind != "narrow", variants)
        out.append((x, "%s:%s" % (eng, label)))
    for (i, _, _), (x, label) in zip(fest, speech.festival_batch([(t, p) for _, t, p in fest])):
        out[i] = (x, "festival:" + label)
    pcm = [(x * 32767).astype(np.int16) for x, _ in out]
    lens = [len(x) for x, _ in out]
    meta = ["%s\t%s" % (label, text) for (_, label), text in zip(out, texts)]
    tmp = path + ".tmp.npz"
    np.savez(tmp, pcm=np.concatenate(pcm), lens=np.array(lens), meta=np.array(meta))
    os.replace(tmp, path)
    return path


def synthesize(work, seed, n_clips, jobs, narrow=0, more=0, random_words=0):
    """The training pool, CHUNK utterances per file (existing files are kept: resumable). The
    first `narrow` clips use speech.synth's narrow ranges (and voices drawn uniformly), the
    last `more` (whole chunks) Festival's voices and espeak-ng's other variants, the rest
    speech.synth's wide ranges (half of them flite); then, in chunks of their own,
    `random_words` clips of speech.random_words texts with the wide ranges' voices."""
    d = os.path.join(work, "clips")
    os.makedirs(d, exist_ok=True)
    n_main = (n_clips + CHUNK - 1) // CHUNK
    n_chunks = n_main + (random_words + CHUNK - 1) // CHUNK
    todo = []
    for c in range(n_chunks):
        p = os.path.join(d, "chunk%03d.npz" % c)
        if not os.path.exists(p):
            if c >= n_main:
                todo.append((p, seed, c * CHUNK, min(CHUNK, random_words - (c - n_main) * CHUNK), "random"))
                continue
            kind = "narrow" if c * CHUNK < narrow else "more" if c * CHUNK >= n_clips - more else "wide"
            todo.append((p, seed, c * CHUNK, min(CHUNK, n_clips - c * CHUNK), kind))
    t0 = time.time()
    if todo:
        from multiprocessing import Pool
        with Pool(jobs) as pool:
            for k, _ in enumerate(pool.imap_unordered(_synth_chunk, todo)):
                print("\rsynthesizing: %d/%d chunks of %d utterances (%.0f s)" % (k + 1, len(todo), CHUNK,
                                                                                    time.time() - t0),
                      end="", file=sys.stderr)
        print(file=sys.stderr)
    clips, texts, voices = [], [], []
    for c in range(n_chunks):
        z = np.load(os.path.join(d, "chunk%03d.npz" % c))
        off = 0
        for n, m in zip(z["lens"], z["meta"]):
            clips.append(z["pcm"][off:off + n].astype(np.float32) / 32767.0)
            off += n
            v, t = str(m).split("\t")
            voices.append(v)
            texts.append(t)
    return clips, texts, voices


class Batcher:
    def __init__(self, clips, texts, word_id, prompt, seed, batch, curriculum, vtlp=0.0, tight=0.0, zeros=0.0,
                 repeats=(), lead_max=0.6):
        self.clips, self.texts, self.word_id, self.prompt = clips, texts, word_id, prompt
        self.seed, self.batch, self.curriculum = seed, batch, curriculum
        self.vtlp, self.tight, self.zeros, self.lead_max = vtlp, tight, zeros, lead_max
        # repeats: (first, end, R): clips [first, end) (the other voices, the random words) drawn R
        # times as often
        extra = [i for first, end, r in repeats for i in range(first, end) for _ in range(r - 1)]
        self.order = sorted(list(range(len(clips))) + extra, key=lambda i: len(clips[i]))

    def get(self, step, curriculum_step=None):
        """Batch `step`: B clips from a window of 3B neighbours in length; during the first
        `curriculum` steps (of the phase: curriculum_step) the window's start is limited to the
        shorter clips (30 % of the pool at first, all of it at the end): short utterances first.
        Every clip is resampled by a random factor 0.85-1.15 (tempo, pitch and formants move
        together: a new speaker for the encoder, so the held-out voices are less new)."""
        rng = random.Random(self.seed * 1000003 + step)
        if curriculum_step is None:
            curriculum_step = step
        B = self.batch
        w = min(len(self.order), 3 * B)
        frac = 1.0 if curriculum_step >= self.curriculum else 0.3 + 0.7 * curriculum_step / self.curriculum
        a = rng.randrange(0, max(1, int(frac * (len(self.order) - w + 1))))
        pick = rng.sample(self.order[a:a + w], B)
        sigs, txts = [], []
        for i in pick:
            s, t = speech.perturb_speed(self.clips[i], rng.uniform(0.85, 1.15)), self.texts[i]
            if rng.random() < 0.04:       # noise or silence only: no text
                s, t = np.zeros(int(rng.uniform(0.3, 1.0) * len(s)) + 1600, np.float32), ""
            snr = float("inf") if rng.random() < 0.1 else None
            if t == "" and rng.random() < 0.5:
                snr = rng.uniform(0.0, 20.0)
            if t and rng.random() < self.tight:   # cut as the VAD cuts (200 ms pad) or tighter
                lead, trail = rng.uniform(0.0, 0.3), rng.uniform(0.0, 0.3)
            else:
                lead, trail = rng.uniform(0.05, self.lead_max), None   # mix's own draw, with --lead-max
            x = speech.mix(rng, s, snr_db=snr, lead=lead, trail=trail) if t else self._noise_only(rng, len(s), snr)
            if self.zeros:   # digital silence before and after: the VAD's 200 ms pad cuts it into
                #              the segment when a noisy clip follows silence in a stream
                z = [int(rng.uniform(0.0, 0.3) * 16000) if rng.random() < self.zeros else 0 for _ in range(2)]
                x = np.concatenate([np.zeros(z[0], np.float32), x, np.zeros(z[1], np.float32)])
            sigs.append(x)
            txts.append(t)
        L = max(len(x) for x in sigs)
        pcm = np.zeros((B, L), np.float32)
        for b, x in enumerate(sigs):
            pcm[b, :len(x)] = x
            if L > len(x):   # pad with the clip's own noise floor continued
                tail = x[-1600:] if len(x) >= 1600 else x
                reps = np.resize(tail, L - len(x))
                pcm[b, len(x):] = reps * (rng.uniform(0.0, 1.0) if rng.random() < 0.5 else 1.0)
        tg = [self.prompt.target(t) for t in txts]
        n = max(len(t) for t in tg)
        tgt = torch.full((B, n), self.prompt.tok.pad, dtype=torch.long)
        mask = torch.zeros(B, n)
        for b, t in enumerate(tg):
            tgt[b, :len(t)] = torch.tensor(t)
            mask[b, :len(t)] = 1
        ctc = [[self.word_id[w] for w in asr_wer.words(t)] for t in txts]
        aug = None
        if self.vtlp:   # formant scale per clip, and SpecAugment's masks: 2 in time, 2 in frequency
            T = L // 160 + 1
            aug = dict(warp=[rng.uniform(1 - self.vtlp, 1 + self.vtlp) for _ in range(B)],
                       masks=[[(0, *span(rng, T, 10)), (0, *span(rng, T, 10)),
                               (1, *span(rng, 128, 12)), (1, *span(rng, 128, 12))] for _ in range(B)])
        return torch.from_numpy(pcm), tgt, mask, ctc, aug

    @staticmethod
    def _noise_only(rng, n, snr):
        level = rng.uniform(0.02, 0.15)
        if snr == float("inf") or rng.random() < 0.3:
            return np.zeros(n, np.float32) + np.float32(1e-4) * speech.noise(rng, n)
        return (speech.noise(rng, n) * level / 10 ** ((snr or 20.0) / 20.0)).astype(np.float32)


def span(rng, n, width):
    """A random [start, end) of at most `width` inside n."""
    w = rng.randint(0, width)
    a = rng.randint(0, max(0, n - w))
    return a, a + w


def augmented_mel(pcm, aug):
    """log_mel with the batch's formant warps, then SpecAugment's masks set to 0 (the mean of
    the normalized features)."""
    if aug is None:
        return log_mel(pcm)
    mel = log_mel(pcm, warp=aug["warp"])
    for b, ms in enumerate(aug["masks"]):
        for axis, a, e in ms:
            if axis == 0:
                mel[b, :, a:e] = 0.0
            else:
                mel[b, a:e, :] = 0.0
    return mel


def batch_loss(model, prompt, pcm, tgt, mask, ctc, decoder=True, aug=None):
    """(transcript cross-entropy, or 0 without the decoder; CTC per word)."""
    rows = model.encoder(augmented_mel(pcm, aug))
    lp = F.log_softmax(model.ctc_logits(rows), -1).transpose(0, 1)          # [T', B, n_words + 1]
    flat = torch.tensor([w for c in ctc for w in c], dtype=torch.long)
    ctc_loss = F.ctc_loss(lp, flat, torch.full((len(ctc),), lp.shape[0], dtype=torch.long),
                          torch.tensor([len(c) for c in ctc]), blank=lp.shape[2] - 1, zero_infinity=True)
    ce = torch.zeros(())
    if decoder:
        x, t0 = prompt.inputs(model.lm, rows, tgt)
        logits = model.lm.logits(model.lm.hidden(x)[:, t0:])
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), reduction="none")
        ce = (ce * mask.reshape(-1)).sum() / mask.sum()
    return ce, ctc_loss


def ctc_greedy(model, mel, words):
    """The CTC head's best path, collapsed (a training diagnostic: the engine never runs it)."""
    out, prev = [], -1
    for k in model.ctc_logits(model.encoder(mel))[0].argmax(-1).tolist():
        if k != prev and k != len(words):
            out.append(words[k])
        prev = k
    return out


def make_val(d, seed, n, voices):
    """n held-out sentences (one in eight: never trained on) spoken by `voices`, 10-30 dB SNR."""
    if os.path.exists(os.path.join(d, "truth.tsv")):
        return
    os.makedirs(d, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    for i, text in enumerate(speech.sentences(seed, n, heldout=True)):
        eng, v = rng.choice(voices)
        s, label = speech.synth(text, eng, v, rng)
        snr = rng.uniform(10, 30)
        speech.write_wav(os.path.join(d, "v%03d.wav" % i), speech.mix(rng, s, snr_db=snr))
        rows.append(("v%03d.wav" % i, eng + ":" + label, "%.1f" % snr, text))
    with open(os.path.join(d, "truth.tsv"), "w") as f:
        f.write("file\tvoice\tsnr_db\ttext\n" + "".join("\t".join(r) + "\n" for r in rows))


def validate(model, prompt, d, words=None):
    """Greedy WER in PyTorch on a val directory: the decoder's transcript, or with `words` the
    CTC head's."""
    import wave
    model.eval()
    errs = total = 0
    with torch.no_grad():
        for name, _, _, text in asr_wer.read_truth(d):
            with wave.open(os.path.join(d, name)) as f:
                x = np.frombuffer(f.readframes(f.getnframes()), "<i2").astype(np.float32) / 32768.0
            mel = log_mel(torch.from_numpy(x))
            hyp = ctc_greedy(model, mel, words) if words else asr_wer.words(asr.greedy(model, prompt, mel))
            ref = asr_wer.words(text)
            errs += asr_wer.wer(ref, hyp)
            total += len(ref)
    model.train()
    return errs / max(total, 1)


def export(model, work, vocab, name, ftype):
    import export as ex
    from audio_export import write_audio_mmproj
    txt = os.path.join(work, "lfm2-audio-asr-text-%s.gguf" % ftype)
    mm = os.path.join(work, "lfm2-audio-asr-mmproj-%s.gguf" % ftype)
    model.eval()
    ex.write_backbone(txt, model.lm, vocab, name, "TINY", ftype)
    write_audio_mmproj(mm, model.encoder, name + " mmproj", ftype)
    return txt, mm


def snapshot(model, a, vocab, name, dev, step):
    """The weights at `step` in snap/, and dev's WER through the engine (exported to snap/)."""
    import asr_eval
    d = os.path.join(a.work, "snap")
    os.makedirs(d, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(d, "step%06d.pt" % step))
    txt, mm = export(model, d, vocab, name, a.type)
    model.train()
    errs, n_ref, pv = asr_eval.evaluate(a.lfm2, txt, mm, dev, a.threads, quiet=True)
    line = "%d\t%.2f\t%s" % (step, 100.0 * errs / max(n_ref, 1),
                              "\t".join("%s=%.1f" % (v, 100.0 * e / max(n, 1)) for v, (e, n) in sorted(pv.items())))
    with open(os.path.join(a.work, "dev.tsv"), "a") as f:
        f.write(line + "\n")
    print("\nsnapshot %d: dev WER through lfm2 transcribe %s" % (step, line.split("\t", 1)[1]), file=sys.stderr)


# what a resumed run must be given unchanged (the time budgets may change: a longer one only
# slows the learning-rate schedule from there on)
OPTS = ("preset", "seed", "ctc_steps", "ctc_lr", "steps", "lr", "enc_lr", "batch", "clips", "ctc_weight",
        "curriculum", "warmup", "narrow_clips", "vtlp", "tight", "zeros", "init", "more_voices", "more_repeat",
        "lead_max", "random_words", "random_repeat")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True)
    ap.add_argument("--lfm2", required=True, help="the lfm2 program (makes the base vocabulary)")
    ap.add_argument("--preset", default=asr.DEFAULT_PRESET, choices=sorted(asr.PRESETS))
    ap.add_argument("--ctc-steps", type=int, default=4000, help="phase 1: encoder steps on CTC + bag of words only")
    ap.add_argument("--ctc-lr", type=float, default=6e-4)
    ap.add_argument("--ctc-minutes", type=float, default=0, help="phase 1's time budget (0: steps only)")
    ap.add_argument("--steps", type=int, default=4000, help="phase 2: joint steps (transcript + CTC)")
    ap.add_argument("--lr", type=float, default=1e-3, help="phase 2: the backbone's peak rate")
    ap.add_argument("--enc-lr", type=float, default=3e-4, help="phase 2: the encoder's peak rate")
    ap.add_argument("--minutes", type=float, default=0, help="phase 2's time budget (0: steps only)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--ctc-weight", type=float, default=0.5, help="phase 2: weight of the CTC loss")
    ap.add_argument("--curriculum", type=int, default=800, help="steps of the short-clips-first curriculum (per phase)")
    ap.add_argument("--clips", type=int, default=6000, help="synthesized training utterances")
    ap.add_argument("--narrow-clips", type=int, default=0,
                    help="the first N clips of the pool with the narrow rate/pitch ranges (speech.synth)")
    ap.add_argument("--vtlp", type=float, default=0.0,
                    help="formant scale 1±VTLP per clip and SpecAugment masks (0: neither)")
    ap.add_argument("--tight", type=float, default=0.0,
                    help="share of clips with 0-0.3 s of silence each side (the VAD's cut) instead of 0.05-0.6 s")
    ap.add_argument("--lead-max", type=float, default=0.6,
                    help="noise before the speech: 0.05-LEAD_MAX s (the clips not --tight; the held-out "
                         "clips have 0.3-1.0 s, which a stream's segment keeps whole)")
    ap.add_argument("--zeros", type=float, default=0.0,
                    help="chance of 0-0.3 s of digital silence before, and after, a clip (a stream with "
                         "silent gaps, cut with the VAD's pad)")
    ap.add_argument("--more-voices", type=int, default=0,
                    help="the last N clips of the pool (whole chunks of %d) spoken by Festival's voices (half) "
                         "and espeak-ng with its other variants too (half)" % CHUNK)
    ap.add_argument("--more-repeat", type=int, default=1, help="draw the --more-voices clips R times as often")
    ap.add_argument("--random-words", type=int, default=0,
                    help="N more clips (after --clips) saying 1-6 vocabulary words in random order "
                         "(speech.random_words), with the wide part's voices: words read off the audio, "
                         "not the templates' order")
    ap.add_argument("--random-repeat", type=int, default=1, help="draw the --random-words clips R times as often")
    ap.add_argument("--dev-n", type=int, default=40, help="clips in dev/ (held-out voices; made once per WORKDIR)")
    ap.add_argument("--snap-every", type=int, default=0,
                    help="phase 2: every N steps keep the weights in snap/ and print dev's WER through lfm2 "
                         "transcribe (asr_average.py averages snapshots)")
    ap.add_argument("--init", default="", help="start from this checkpoint's weights (a warm start)")
    ap.add_argument("--jobs", type=int, default=2, help="synthesis processes")
    ap.add_argument("--eval-every", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ckpt-minutes", type=float, default=3.0)
    ap.add_argument("--type", default="f16", choices=["f32", "f16"], help="exported file type")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    os.makedirs(a.work, exist_ok=True)
    vocab = os.path.join(a.work, "vocab.gguf")
    words = speech.vocabulary()
    if not os.path.exists(vocab):
        asr.build_vocab(asr.make_base_vocab(a.lfm2, a.work), words, vocab)
    tok = Tokenizer(vocab)
    prompt = asr.Prompt(tok)
    word_id = {w: i for i, w in enumerate(words)}
    clips, texts, _ = synthesize(a.work, a.seed, a.clips, a.jobs, a.narrow_clips, a.more_voices, a.random_words)
    print("train: %d utterances, %.1f minutes of speech, %d words, vocabulary %d tokens" %
          (len(clips), sum(map(len, clips)) / 16000 / 60, len(words), len(tok.tokens)), file=sys.stderr)
    val = os.path.join(a.work, "val")          # held-out sentences, training voices
    dev = os.path.join(a.work, "dev")          # held-out sentences, held-out voices (not the test clips)
    make_val(val, 999, 40, speech.train_voices())
    make_val(dev, 777, a.dev_n, speech.heldout_voices())

    model = asr.build(a.preset, len(tok.tokens), asr.word_tokens(tok, words))
    model.init_weights(a.seed)
    if a.init:
        model.load_state_dict(checkpoint.load(a.init)["model"])
    torch.manual_seed(a.seed)
    enc_params = list(model.encoder.parameters()) + [model.ctc_blank, model.ctc_bias]
    lm_params = list(model.lm.parameters())
    # phase 1 trains the encoder and (through the tied CTC classifier) the words' embeddings
    opt = torch.optim.AdamW([{"params": enc_params}, {"params": lm_params}], lr=a.ctc_lr, betas=(0.9, 0.98),
                            weight_decay=0.01)
    ck_path, log_path = os.path.join(a.work, "checkpoint.pt"), os.path.join(a.work, "loss.tsv")
    meta = {k: getattr(a, k) for k in OPTS + ("ctc_minutes", "minutes")}
    meta.update(step=0, elapsed=0.0, phase_start=0.0, samples=0,
                name="LFM2-Audio synthetic-speech ASR (trained by tools/train)")
    start = 0
    if os.path.exists(ck_path):
        ck = checkpoint.load(ck_path)
        for k in OPTS:
            if ck["meta"].get(k, ap.get_default(k)) != meta[k]:   # absent: made before the option
                sys.exit("asr_train: %s was made with %s=%r, not %r: use another --work or the same options" %
                         (ck_path, k, ck["meta"].get(k), meta[k]))
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        meta = {**ck["meta"], "ctc_minutes": a.ctc_minutes, "minutes": a.minutes}
        start = meta["step"]
        a.ctc_steps = meta.get("ctc_steps_done", a.ctc_steps)
        print("train: resuming %s at step %d (%s trained)" % (ck_path, start, fmt_time(meta["elapsed"])),
              file=sys.stderr)

    batcher = Batcher(clips, texts, word_id, prompt, a.seed, a.batch, a.curriculum, a.vtlp, a.tight, a.zeros,
                      [(a.clips - a.more_voices, a.clips, a.more_repeat),
                       (a.clips, a.clips + a.random_words, a.random_repeat)], a.lead_max)
    log = open(log_path, "a" if start else "w")
    if not start:
        log.write("step\tphase\telapsed_s\tloss\tctc_loss\tlr\tbatch_seconds\n")
    t_start, t_ck = time.time() - meta["elapsed"], time.time()
    ema = None
    model.train()
    step = start
    while step < a.ctc_steps + a.steps:
        total = a.ctc_steps + a.steps
        phase1 = step < a.ctc_steps
        k, n, budget = (step, a.ctc_steps, a.ctc_minutes) if phase1 else (step - a.ctc_steps, a.steps, a.minutes)
        el = time.time() - t_start
        if step == a.ctc_steps:
            meta["phase_start"] = el
        if budget:   # the schedule follows whichever of the phase's budgets runs out first
            k = max(k, int(n * (el - (0.0 if phase1 else meta["phase_start"])) / (budget * 60)))
        f = lr_at(k, n, 1.0, a.warmup)
        opt.param_groups[0]["lr"] = f * (a.ctc_lr if phase1 else a.enc_lr)
        opt.param_groups[1]["lr"] = f * (a.ctc_lr if phase1 else a.lr)
        pcm, tgt, mask, ctc, aug = batcher.get(step, step if phase1 else step - a.ctc_steps)
        ce, ctc_loss = batch_loss(model, prompt, pcm, tgt, mask, ctc, decoder=not phase1, aug=aug)
        loss = ctc_loss if phase1 else ce + a.ctc_weight * ctc_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        meta["samples"] += a.batch
        el = time.time() - t_start
        lv = float(ce if not phase1 else ctc_loss)
        ema = lv if ema is None or step == a.ctc_steps else 0.98 * ema + 0.02 * lv
        log.write("%d\t%d\t%.1f\t%.5f\t%.5f\t%.2e\t%.2f\n" % (step, 1 if phase1 else 2, el, float(ce), float(ctc_loss),
                                                            opt.param_groups[0]["lr"], pcm.shape[1] / 16000))
        done = step + 1 - start
        eta = (el - meta["elapsed"]) / done * (total - step - 1)
        print("\r%s %s %d/%d %s %.4f (avg %.4f) ctc %.3f elapsed %s eta %s   " %
              (bar((step + 1) / total), "ctc" if phase1 else "joint", step + 1, total,
               "ctc" if phase1 else "loss", lv, ema, float(ctc_loss), fmt_time(el), fmt_time(eta)),
              end="", file=sys.stderr)
        if a.eval_every and (step + 1) % a.eval_every == 0:
            w = None if not phase1 else words
            print("\n%s WER: val %.1f %%, dev %.1f %%" % ("CTC" if phase1 else "transcript",
                                                         100 * validate(model, prompt, val, w),
                                                         100 * validate(model, prompt, dev, w)), file=sys.stderr)
        if a.snap_every and not phase1 and (step + 1 - a.ctc_steps) % a.snap_every == 0:
            snapshot(model, a, vocab, meta["name"], dev, step + 1)
        out_of_time = budget and el - (0.0 if phase1 else meta["phase_start"]) > budget * 60
        end_phase = step + 1 == a.ctc_steps or step + 1 == total
        if time.time() - t_ck > a.ckpt_minutes * 60 or end_phase or out_of_time:
            log.flush()
            if out_of_time and phase1:   # phase 1 ends early: phase 2 starts at the next step
                a.ctc_steps = step + 1
                meta["ctc_steps_done"] = step + 1
            meta.update(step=step + 1, elapsed=el)
            checkpoint.save(ck_path, model, opt, meta)
            t_ck = time.time()
            if out_of_time and not phase1:
                print("\ntrain: --minutes %g reached at step %d" % (a.minutes, step + 1), file=sys.stderr)
                break
        step += 1
    print(file=sys.stderr)
    log.close()
    print("train: %d steps, %d samples, %s; CTC WER val %.1f %% dev %.1f %%; transcript WER val %.1f %% dev %.1f %%"
          % (meta["step"], meta["samples"], fmt_time(meta["elapsed"]), 100 * validate(model, prompt, val, words),
             100 * validate(model, prompt, dev, words), 100 * validate(model, prompt, val),
             100 * validate(model, prompt, dev)), file=sys.stderr)
    txt, mm = export(model, a.work, vocab, meta["name"], a.type)
    print("train: wrote %s and %s" % (txt, mm), file=sys.stderr)
    # the same clips through the C engine (VAD, official front-end, the exported files)
    import asr_eval
    for d in (val, dev):
        errs, n_ref, _ = asr_eval.evaluate(a.lfm2, txt, mm, d, a.threads)
        print("train: %s WER through lfm2 transcribe %.1f %%" % (os.path.basename(d), 100.0 * errs / max(n_ref, 1)),
              file=sys.stderr)


if __name__ == "__main__":
    main()
