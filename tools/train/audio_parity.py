#!/usr/bin/python3
"""audio_parity.py — conformer.py (official log-mel, FastConformer encoder, adapter), exported by
audio_export.py with random weights, against the C engine (`lfm2 embed-audio --frontend
official`): a third implementation of LFM2-Audio's speech input, checked before any training.

  * layout: the export's keys (in order, with their types) and its tensors (names, order, ggml
    types, shapes) = `lfm2 mkmodel --config audio-tiny`'s mmproj, for F32 and F16 files;
  * mel: the engine's official log-mel (--mel) vs log_mel() in float64, ≤ 1e-4 abs (the
    official front-end's tolerance against an independent reference, tests/audio/test-frontend.c);
  * encoder + adapter from the engine's own mel, F32 file, float64 here: ≤ 1e-5 abs (the
    fixtures' encoder tolerance, tests/audio/test-parity.c);
  * end to end from the WAV: F32 file ≤ 3e-3 abs, F16 file (matrices rounded to F16 here) ≤ 5e-3;
  * the token count ceil(T/8) for every clip.

Clips: the bundled fixture WAVs (tests/data/audio/wav: espeak-ng speech, a chirp, noise, a
sine, 0.5 s of silence). Exit status 0 when everything agrees, 1 otherwise, 77 (skip) without
torch.

    /usr/bin/python3 tools/train/audio_parity.py --lfm2 build/tools/lfm2 [--data tests/data] [--keep DIR]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import wave

try:
    import numpy as np
    import torch
except ImportError as e:   # meson: exit code 77 = skipped
    print("audio-parity: skipped, %s (install python3-torch python3-numpy)" % e)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf  # noqa: E402
from audio_export import write_audio_mmproj  # noqa: E402
from conformer import AudioEncoder, ConformerConfig, log_mel, n_frames, n_tokens  # noqa: E402

MEL_TOL, ENC_TOL, E2E_TOL, F16_TOL = 1e-4, 1e-5, 3e-3, 5e-3
CLIPS = ["speech_4s", "chirp_2.5s", "noise_3s", "sine440_1s", "silence_0.5s"]
# mkmodel's audio-tiny shapes, and the trained model's (asr.py's preset)
SHAPES = {"audio-tiny": ConformerConfig()}


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("audio-parity: %s failed:\n%s" % (" ".join(cmd), r.stderr))
    return r.stdout


def read_wav(path):
    with wave.open(path, "rb") as f:
        if f.getsampwidth() != 2 or f.getnchannels() != 1 or f.getframerate() != 16000:
            raise SystemExit("audio-parity: %s is not 16-bit mono 16 kHz" % path)
        return np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def layout(path):
    r = gguf.Reader(path)
    kv = [(k, v[0]) for k, v in r.kv.items()]
    ts = [(n, t, ne) for n, (t, ne, _) in r.tensors.items()]
    return kv, ts


def f16_rounded(enc):
    """A float64 copy of enc with the matrices an F16 file stores in F16 rounded as it stores
    them (audio_export: every Linear outside the convolution module, and linear_pos)."""
    import copy
    e = copy.deepcopy(enc).double()
    mats = [e.sub.out, e.ad1, e.ad3]
    for L in e.layers:
        mats += [L.ff1.up, L.ff1.down, L.ff2.up, L.ff2.down, L.att.q, L.att.k, L.att.v, L.att.o, L.att.pos]
    for m in mats:
        m.weight.data = m.weight.data.half().double()
    return e


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfm2", required=True, help="the lfm2 command-line program")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                   "tests", "data"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", help="write the files here instead of a temporary directory")
    a = ap.parse_args()
    torch.set_num_threads(2)
    try:
        import asr
        SHAPES["asr"] = asr.PRESETS[asr.DEFAULT_PRESET]["encoder"]
    except ImportError:
        pass

    fails = 0

    def report(ok, msg):
        nonlocal fails
        fails += not ok
        print("%s %s" % ("ok  " if ok else "FAIL", msg))

    with tempfile.TemporaryDirectory() as tmp:
        d = a.keep or tmp
        os.makedirs(d, exist_ok=True)
        for preset, cfg in SHAPES.items():
            enc = AudioEncoder(cfg)
            g = torch.Generator().manual_seed(a.seed)
            enc.init_weights(g)
            if cfg.batch_norm:   # running statistics as training leaves them: the export folds them
                for L in enc.layers:
                    L.conv.bn_mean.normal_(0.0, 0.3, generator=g)
                    L.conv.bn_var.uniform_(0.3, 3.0, generator=g)
            enc.eval()
            mm32, mm16 = os.path.join(d, preset + "-f32.gguf"), os.path.join(d, preset + "-f16.gguf")
            write_audio_mmproj(mm32, enc, "LFM2-Audio %s random seed%d" % (preset, a.seed), "f32")
            write_audio_mmproj(mm16, enc, "LFM2-Audio %s random seed%d" % (preset, a.seed), "f16")

            if preset == "audio-tiny":
                for ft in ("f32", "f16"):
                    ref = os.path.join(d, "mkmodel-%s.gguf" % ft)
                    run([a.lfm2, "mkmodel", "--config", "audio-tiny", "--type", "f32", "--seed", "0", "-o",
                         os.path.join(d, "mkmodel-text.gguf"), "--mmproj-out", ref, "--mmproj-type", ft])
                    want, got = layout(ref), layout(mm32 if ft == "f32" else mm16)
                    report(want == got, "%s %s: keys (%d) and tensors (%d: names, order, types, shapes) as "
                           "lfm2 mkmodel writes them" % (preset, ft, len(got[0]), len(got[1])))

            e64 = enc.double()
            e16 = f16_rounded(enc)
            for clip in CLIPS:
                wav = os.path.join(a.data, "audio", "wav", clip + ".wav")
                pcm = read_wav(wav)
                T = n_frames(len(pcm))
                Tq = n_tokens(T)
                emb, mel = os.path.join(d, "e.f32"), os.path.join(d, "m.f32")
                out = run([a.lfm2, "embed-audio", "--mmproj", mm32, "--audio", wav, "-o", emb, "--mel", mel,
                           "--frontend", "official", "-t", "2"])
                got_mel = np.fromfile(mel, dtype=np.float32)
                got = np.fromfile(emb, dtype=np.float32)
                if got_mel.size != 128 * T or got.size != Tq * cfg.n_embd_text:
                    report(False, "%s %s: the engine wrote %d mel values and %d embedding values; %d frames "
                           "and %d tokens expected (%s)" % (preset, clip, got_mel.size, got.size, T, Tq, out.strip()))
                    continue
                got_mel = got_mel.reshape(128, T)
                got = got.reshape(Tq, -1)
                with torch.no_grad():
                    ref_mel = log_mel(torch.from_numpy(pcm), torch.float64)
                    from_mel = e64(torch.from_numpy(got_mel).double()[None])[0].numpy()
                    e2e = e64(ref_mel)[0].numpy()
                dm = float(np.abs(got_mel - ref_mel[0].numpy()).max())
                report(dm <= MEL_TOL, "%s %s: mel %dx%d max |Δ| %.2e (tol %.0e)" % (preset, clip, 128, T, dm, MEL_TOL))
                de = float(np.abs(got - from_mel).max())
                report(de <= ENC_TOL, "%s %s: %d embeddings from the engine's mel, max |Δ| %.2e (tol %.0e), rms %.3f"
                       % (preset, clip, Tq, de, ENC_TOL, float(np.sqrt((from_mel ** 2).mean()))))
                dw = float(np.abs(got - e2e).max())
                report(dw <= E2E_TOL, "%s %s: end to end from the WAV, max |Δ| %.2e (tol %.0e)" % (preset, clip, dw, E2E_TOL))
                run([a.lfm2, "embed-audio", "--mmproj", mm16, "--audio", wav, "-o", emb, "--frontend", "official",
                     "-t", "2"])
                got16 = np.fromfile(emb, dtype=np.float32).reshape(Tq, -1)
                with torch.no_grad():
                    r16 = e16(ref_mel)[0].numpy()
                d16 = float(np.abs(got16 - r16).max())
                report(d16 <= F16_TOL, "%s %s: F16 file end to end, max |Δ| %.2e (tol %.0e)" % (preset, clip, d16, F16_TOL))
    print("audio-parity: %s" % ("all agree" if not fails else "%d mismatches" % fails))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
