"""speech.py — synthetic English speech for the tiny LFM2-Audio ASR model: a closed vocabulary
of a few hundred words (numbers, smart-home and media commands, colours, rooms, objects, names)
in short template sentences, spoken by espeak-ng and flite (every English voice they ship, with
varied rate and pitch), mixed at training/test time with background noise at 10-30 dB SNR and
silences.

Held out (never in training): the espeak-ng voice en-029 (Caribbean English, every variant),
the flite voice rms, and one sentence in eight (by a hash of its text) — the test set is new
voices saying new sentences made of known words.

    from speech import sentences, train_voices, heldout_voices, synth, mix
"""
import hashlib
import io
import os
import random
import subprocess
import tempfile
import wave

import numpy as np

from asr_wer import words

SR = 16000

# ---- vocabulary and sentences ------------------------------------------------------------------

UNITS = "zero one two three four five six seven eight nine".split()
TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
COLOURS = "red green blue yellow white black orange purple pink brown grey".split()
ROOMS = ["kitchen", "bedroom", "bathroom", "living room", "office", "garden", "hall", "garage", "basement"]
DEVICES = ["lights", "lamp", "fan", "heater", "radio", "television", "music", "oven", "kettle", "camera",
           "computer", "printer", "speaker", "alarm"]
OPENABLE = ["door", "window", "garage door", "blinds", "curtains", "gate", "fridge", "box", "drawer"]
OBJECTS = "ball box cup book car key phone chair table bottle bag hat shoe pen plate clock bike".split()
PLACES = "table chair bed shelf floor desk sofa box".split()
NAMES = "alice bob carol david emma frank grace henry isabel jack kate liam mia noah olivia peter".split()
CITIES = "london paris berlin tokyo madrid rome boston chicago sydney dublin".split()
MEDIA = ["music", "song", "video", "radio", "podcast", "movie", "playlist", "news"]
UNITS_T = ["seconds", "minutes", "hours"]
DAYS = "monday tuesday wednesday thursday friday saturday sunday today tomorrow tonight".split()
SINGLES = ["yes", "no", "stop", "go", "help", "cancel", "okay", "start", "pause", "next", "back", "repeat",
           "hello", "goodbye", "thank you", "up", "down", "left", "right", "louder", "quieter", "mute",
           "again", "wait", "continue", "finish"]


def number(rng, lo=0, hi=99):
    return say(rng.randint(lo, hi))


def say(n):
    """0..99 in words."""
    if n < 10:
        return UNITS[n]
    if n < 20:
        return TEENS[n - 10]
    t, u = divmod(n, 10)
    return TENS[t - 2] + ("" if u == 0 else " " + UNITS[u])


def _plural(n_word, noun):
    return noun if n_word == "one" else noun + ("es" if noun.endswith(("x", "s", "ch")) else "s")


TEMPLATES = [
    lambda r: "turn %s the %s" % (r.choice(["on", "off"]), r.choice(DEVICES)),
    lambda r: "turn %s the %s in the %s" % (r.choice(["on", "off"]), r.choice(DEVICES), r.choice(ROOMS)),
    lambda r: "set a timer for %s %s" % (number(r, 2, 59), r.choice(UNITS_T)),
    lambda r: "set an alarm for %s %s" % (number(r, 1, 12), r.choice(["o clock", "thirty", "fifteen", "forty five"])),
    lambda r: "set the %s to %s" % (r.choice(["volume", "temperature", "brightness", "speed"]), number(r, 0, 99)),
    lambda r: "%s the %s" % (r.choice(["play", "pause", "stop", "skip", "resume", "record"]), r.choice(MEDIA)),
    lambda r: "play the next %s" % r.choice(MEDIA),
    lambda r: "%s the %s" % (r.choice(["open", "close", "lock", "unlock"]), r.choice(OPENABLE)),
    lambda r: "%s %s" % (r.choice(["call", "message", "email", "find", "text"]), r.choice(NAMES)),
    lambda r: "send a message to %s" % r.choice(NAMES),
    lambda r: "move %s %s" % ((lambda n: "%s %s" % (n, _plural(n, "step")))(number(r, 1, 20)),
                              r.choice(["left", "right", "forward", "back", "up", "down"])),
    lambda r: "turn the volume %s" % r.choice(["up", "down"]),
    lambda r: "the %s %s is %s the %s" % (r.choice(COLOURS), r.choice(OBJECTS),
                                          r.choice(["on", "under", "near", "behind", "in"]), r.choice(PLACES)),
    lambda r: "%s %s a %s %s" % (r.choice(NAMES), r.choice(["has", "wants", "found", "likes", "bought", "lost"]),
                                 r.choice(COLOURS), r.choice(OBJECTS)),
    lambda r: "%s is in the %s" % (r.choice(NAMES), r.choice(ROOMS)),
    lambda r: "what is the weather in %s %s" % (r.choice(CITIES), r.choice(DAYS)),
    lambda r: "what time is it in %s" % r.choice(CITIES),
    lambda r: "it is %s degrees in the %s" % (number(r, 0, 40), r.choice(ROOMS)),
    lambda r: "my code is %s" % " ".join(r.choice(UNITS) for _ in range(r.randint(3, 5))),
    lambda r: " ".join(r.choice(UNITS) for _ in range(r.randint(2, 6))),
    lambda r: number(r, 0, 99),
    lambda r: (lambda x, y: "%s plus %s is %s" % (say(x), say(y), say(x + y)))(r.randint(0, 20), r.randint(0, 20)),
    lambda r: "i see %s %s %s" % ((lambda n: (n, r.choice(COLOURS), _plural(n, r.choice(OBJECTS))))(number(r, 1, 9))),
    lambda r: "meet %s in %s on %s" % (r.choice(NAMES), r.choice(CITIES), r.choice(DAYS)),
    lambda r: "please %s the %s" % (r.choice(["clean", "check", "close", "open", "light", "cool"]), r.choice(ROOMS)),
    lambda r: r.choice(SINGLES),
    lambda r: "%s %s" % (r.choice(SINGLES), r.choice(SINGLES)),
]


def sentence(rng):
    return rng.choice(TEMPLATES)(rng)


def is_heldout_sentence(text):
    return hashlib.sha1(text.encode()).digest()[0] % 8 == 0


def sentences(seed, n, heldout):
    """n distinct-as-possible sentences on one side of the held-out split."""
    rng = random.Random(seed)
    out = []
    for _ in range(n * 50):
        s = sentence(rng)
        if is_heldout_sentence(s) == heldout:
            out.append(s)
            if len(out) == n:
                break
    return out


def random_words(seed, n, lo=1, hi=6):
    """n texts of lo-hi vocabulary words drawn uniformly, in no template's order (the words must
    be read off the audio, not guessed from the ones before them), none a held-out sentence."""
    rng = random.Random(seed)
    vocab = vocabulary()
    out = []
    while len(out) < n:
        s = " ".join(rng.choice(vocab) for _ in range(rng.randint(lo, hi)))
        if not is_heldout_sentence(s):
            out.append(s)
    return out


def vocabulary():
    """Every word a template can produce (the closed vocabulary), sorted."""
    vs = set(UNITS + TEENS + TENS + COLOURS + OBJECTS + PLACES + NAMES + CITIES + UNITS_T + DAYS)
    for group in (ROOMS, DEVICES, OPENABLE, MEDIA, SINGLES):
        for x in group:
            vs.update(x.split())
    rng = random.Random(0)
    for _ in range(20000):
        vs.update(words(sentence(rng)))
    return sorted(vs)


# ---- voices ------------------------------------------------------------------------------------

ESPEAK_VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-us-nyc",
                 "en-029"]
ESPEAK_VARIANTS = ["", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
                   "klatt3", "klatt4", "croak", "adam", "linda", "john", "robert", "steph", "Andy", "Annie", "edward",
                   "max", "paul", "grandma", "grandpa", "david", "michel", "belinda"]
FLITE_VOICES = ["kal", "kal16", "awb", "rms", "slt"]
# more speakers for the training pool only (asr_train.py --more-voices; never in val/dev/test):
# Festival's US English voices (Debian: festival festvox-kdlpc16k festvox-kallpc16k
# festvox-us-slt-hts) — ked is a speaker flite lacks, kal and slt the same speakers as flite's
# through other synthesis methods (residual-LPC diphones, HTS) — and espeak-ng's other variants
FESTIVAL_VOICES = ["ked_diphone", "ked_diphone", "ked_diphone", "kal_diphone", "cmu_us_slt_arctic_hts"]
EXTRA_VARIANTS = ["Alex", "Alicia", "Andrea", "antonio", "aunty", "benjamin", "boris", "caleb", "Denis", "Diogo",
                  "ed", "edward2", "Gene", "Gene2", "gustave", "Henrique", "Hugo", "iven", "iven2", "iven3", "iven4",
                  "Jacky", "kaukovalta", "Lee", "marcelo", "Marco", "Mario", "Michael", "miguel", "Mike", "Mr",
                  "Nguyen", "pablo", "pedro", "quincy", "rob", "steph2", "steph3", "Storm", "zac", "anika",
                  "AnxiousAndy", "klatt5", "klatt6", "norbert", "sandro", "shelby", "travis", "victor"]
HELDOUT = {("espeak", "en-029"), ("flite", "rms")}


def all_voices():
    return [("espeak", v) for v in ESPEAK_VOICES] + [("flite", v) for v in FLITE_VOICES]


def train_voices():
    return [v for v in all_voices() if v not in HELDOUT]


def heldout_voices():
    return sorted(HELDOUT)


def _resample(x, sr_in):
    """Band-limited resampling of a whole clip to 16 kHz (FFT: truncate/extend the spectrum)."""
    if sr_in == SR:
        return x
    n_out = int(round(len(x) * SR / sr_in))
    X = np.fft.rfft(x)
    m = n_out // 2 + 1
    Y = np.zeros(m, dtype=complex)
    k = min(m, len(X))
    Y[:k] = X[:k]
    return np.fft.irfft(Y, n_out) * (n_out / len(x))


def _read_wav(data):
    with wave.open(io.BytesIO(data), "rb") as f:
        sr, n = f.getframerate(), f.getnframes()
        x = np.frombuffer(f.readframes(n), dtype="<i2").astype(np.float64) / 32768.0
    return x, sr


def synth(text, engine, voice, rng, wide=False, variants=ESPEAK_VARIANTS):
    """One utterance as float32 at 16 kHz, leading/trailing silence trimmed; rate and pitch drawn
    from rng (espeak-ng: 120-230 words/min, pitch 20-80; flite: duration stretch 0.8-1.25).
    wide (the training pool): espeak-ng 110-260 words/min, pitch 0-99;
    flite duration stretch 0.75-1.35 and the voice's mean F0 moved to 70-260 Hz with a
    10-50 Hz spread (kal, kal16, awb and slt follow it; the held-out rms ignores it).
    (Festival's voices: festival_params and festival_batch.)"""
    if engine == "espeak":
        variant = rng.choice(variants)
        v = voice + ("+" + variant if variant else "")
        if wide:
            cmd = ["espeak-ng", "-v", v, "-s", str(rng.randint(110, 260)), "-p", str(rng.randint(0, 99)),
                   "--stdout", text]
        else:
            cmd = ["espeak-ng", "-v", v, "-s", str(rng.randint(120, 230)), "-p", str(rng.randint(20, 80)),
                   "--stdout", text]
        data = subprocess.run(cmd, capture_output=True, check=True).stdout
        label = v
    else:
        stretch = rng.uniform(0.75, 1.35) if wide else rng.uniform(0.8, 1.25)
        opts = ["--setf", "duration_stretch=%.3f" % stretch]
        label = voice
        if wide:
            f0, sd = rng.uniform(70.0, 260.0), rng.uniform(10.0, 50.0)
            opts += ["--setf", "int_f0_target_mean=%.0f" % f0, "--setf", "int_f0_target_stddev=%.0f" % sd]
            label = "%s+f0=%.0f" % (voice, f0)
        with subprocess.Popen(["flite", "-voice", voice] + opts + ["-t", text, "-o", "/dev/stdout"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as p:
            data = p.stdout.read()
    x, sr = _read_wav(data)
    return _trim(_resample(x, sr)), label


def festival_params(rng, voice):
    """A Festival utterance's settings (the training pool's): the diphone voices' mean F0
    70-220 Hz with a 10-40 Hz spread, duration stretch 0.75-1.35 (the HTS voice ignores both)."""
    return voice, rng.uniform(70.0, 220.0), rng.uniform(10.0, 40.0), rng.uniform(0.75, 1.35)


def festival_batch(items):
    """[(text, (voice, f0, spread, stretch))] → [(float32 clip at 16 kHz, label)], one `festival -b`
    for all of them (a process per utterance would spend most of its time loading the voices)."""
    with tempfile.TemporaryDirectory() as d:
        lines = []
        for i, (text, (voice, f0, sd, stretch)) in enumerate(items):
            lines += ["(voice_%s)" % voice,
                      "(set! int_lr_params '((target_f0_mean %.0f) (target_f0_std %.0f) (model_f0_mean 170) "
                      "(model_f0_std 34)))" % (f0, sd),
                      "(Parameter.set 'Duration_Stretch %.3f)" % stretch,
                      '(utt.save.wave (SynthText "%s") "%s/%04d.wav" \'riff)' % (text, d, i)]
        with open(os.path.join(d, "batch.scm"), "w") as f:
            f.write("\n".join(lines) + "\n")
        subprocess.run(["festival", "-b", os.path.join(d, "batch.scm")], capture_output=True, check=True)
        out = []
        for i, (text, (voice, f0, sd, stretch)) in enumerate(items):
            with open("%s/%04d.wav" % (d, i), "rb") as f:
                x, sr = _read_wav(f.read())
            out.append((_trim(_resample(x, sr)), "%s+f0=%.0f" % (voice, f0)))
    return out


def _trim(x):
    """Leading and trailing silence cut (10 ms kept), as float32."""
    a = np.abs(x)
    on = np.nonzero(a > 0.01 * (a.max() + 1e-9))[0]
    if len(on):
        x = x[max(0, on[0] - 160):on[-1] + 160]
    return x.astype(np.float32)


# ---- noise and mixing --------------------------------------------------------------------------

def perturb_speed(x, factor):
    """x played `factor` times faster (linear interpolation): tempo, pitch and formants all
    scale by it, as a shorter or longer vocal tract speaking faster or slower would."""
    if abs(factor - 1.0) < 1e-3:
        return x
    n = max(2, int(len(x) / factor))
    return np.interp(np.arange(n) * factor, np.arange(len(x)), x).astype(np.float32)


def noise(rng, n, kind=None):
    """Unit-RMS background noise: white, pink, brown, or mains hum with white noise."""
    kind = kind or rng.choice(["white", "pink", "brown", "hum"])
    g = np.random.default_rng(rng.getrandbits(63))
    w = g.standard_normal(n)
    if kind == "pink" or kind == "brown":
        X = np.fft.rfft(w)
        f = np.arange(len(X)) + 1.0
        X /= np.sqrt(f) if kind == "pink" else f
        w = np.fft.irfft(X, n)
    elif kind == "hum":
        t = np.arange(n) / SR
        f0 = rng.choice([50.0, 60.0])
        w = 0.3 * w + sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.3)) / h for h in (1, 2, 3))
    return (w / (np.sqrt((w ** 2).mean()) + 1e-12)).astype(np.float32)


def mix(rng, speech, total=None, snr_db=None, lead=None, trail=None):
    """speech placed after `lead` seconds of silence in a clip of `total` samples (default:
    speech + `trail` s; both 0.05-0.6 s when not given), at a random level (RMS 0.02-0.15), with noise at snr_db (None: 10-30 dB;
    float('inf'): none). Returns float32."""
    if lead is None:
        lead = rng.uniform(0.05, 0.6)
    a = int(lead * SR)
    if total is None:
        total = a + len(speech) + int((rng.uniform(0.05, 0.6) if trail is None else trail) * SR)
    out = np.zeros(total, dtype=np.float32)
    n = min(len(speech), total - a)
    level = rng.uniform(0.02, 0.15)   # active-speech RMS: peaks stay mostly below full scale
    s = speech[:n]
    rms = np.sqrt((s[np.abs(s) > 0.02 * np.abs(s).max()] ** 2).mean()) if n else 1.0   # active speech
    out[a:a + n] = s * (level / (rms + 1e-9))
    if snr_db is None:
        snr_db = rng.uniform(10.0, 30.0)
    if snr_db != float("inf"):
        out += noise(rng, total) * (level / 10 ** (snr_db / 20.0))
    return np.clip(out, -1.0, 1.0)


def write_wav(path, x):
    with wave.open(path, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SR)
        f.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


def make_testset(out_dir, n, seed=12345):
    """n held-out clips (held-out voices × held-out sentences, noise at 10-30 dB SNR, silences
    around) as 16-bit WAVs and truth.tsv (file, voice, SNR dB, text)."""
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(seed)
    texts = sentences(seed, n, heldout=True)
    voices = heldout_voices()
    rows = []
    for i, text in enumerate(texts):
        eng, v = voices[i % len(voices)]
        s, label = synth(text, eng, v, rng)
        snr = rng.uniform(10.0, 30.0)
        x = mix(rng, s, snr_db=snr, lead=rng.uniform(0.3, 1.0))
        name = "clip%03d.wav" % i
        write_wav(os.path.join(out_dir, name), x)
        rows.append((name, "%s:%s" % (eng, label), "%.1f" % snr, text))
    with open(os.path.join(out_dir, "truth.tsv"), "w") as f:
        f.write("file\tvoice\tsnr_db\ttext\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    return rows


