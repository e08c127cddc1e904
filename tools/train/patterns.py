"""patterns.py — GStreamer's videotestsrc patterns and their captions, rendered by
gst-launch-1.0 (standard library only: the tests import this with any Python 3).

Every caption is true for every frame of its pattern at any size: the patterns are drawn with
videotestsrc's default colours, and `ball` moves (its caption does not say where).
"""
import os
import subprocess
import tempfile

# pattern -> caption. Only videotestsrc's own names are used as keys.
CAPTIONS = {
    "smpte": "SMPTE colour bars",
    "ball": "a white ball on a black background",
    "snow": "black and white noise",
    "checkers-8": "a red and green checkerboard",
    "circular": "concentric circles",
    "pinwheel": "a black and white pinwheel",
    "spokes": "white spokes on a black background",
    "gradient": "a grey gradient",
    "colors": "a grid of colours",
    "bar": "a white bar on a black background",
    "black": "a black screen",
    "white": "a white screen",
    "red": "a red screen",
    "green": "a green screen",
    "blue": "a blue screen",
}
PATTERNS = list(CAPTIONS)

# Variants: (pattern, extra videotestsrc properties). Frames of moving patterns differ.
MOTIONS = ["wavy", "sweep", "hsweep"]


def _frames(raw, w, h):
    """Splits raw RGB output (rows padded to 4 bytes, as GStreamer lays out RGB) into frames of
    tightly packed rows."""
    stride = (w * 3 + 3) & ~3
    size = stride * h
    out = []
    for off in range(0, len(raw) - size + 1, size):
        f = raw[off:off + size]
        out.append(f if stride == w * 3 else b"".join(f[y * stride:y * stride + w * 3] for y in range(h)))
    return out


def render(jobs, w, h, registry, gst_launch="gst-launch-1.0"):
    """Renders several videotestsrc streams of one size in one gst-launch-1.0 process.
    jobs: [(key, pattern, {property: value}, n_buffers)] → {key: [frame bytes (RGB, w·h·3)]}.
    The property "format" (not videotestsrc's) renders in that raw format and converts to RGB
    with videoconvert, as a pipeline negotiating it shows the pattern ('colors' enumerates the
    format's own value space, so it looks different in YUV).
    GStreamer runs with the system plugins only (no GST_* variable of the caller: a test's
    plugin path may hold an instrumented build) and its registry in the file `registry`."""
    with tempfile.TemporaryDirectory(prefix="lfm2-patterns-") as d:
        args = [gst_launch, "-q"]
        for i, (key, pattern, props, n) in enumerate(jobs):
            props = dict(props)
            fmt = props.pop("format", None)
            args += ["videotestsrc", "pattern=%s" % pattern, "num-buffers=%d" % n]
            args += ["%s=%s" % kv for kv in sorted(props.items())]
            if fmt:
                args += ["!", "video/x-raw,format=%s,width=%d,height=%d,framerate=30/1" % (fmt, w, h),
                         "!", "videoconvert"]
            args += ["!", "video/x-raw,format=RGB,width=%d,height=%d,framerate=30/1" % (w, h),
                     "!", "filesink", "location=%s" % os.path.join(d, "%d.raw" % i)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GST_")}
        env["GST_REGISTRY_1_0"] = registry
        r = subprocess.run(args, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise RuntimeError("gst-launch-1.0 failed (%s):\n%s" % (" ".join(args[:12]), r.stderr))
        out = {}
        for i, (key, _, _, _) in enumerate(jobs):
            with open(os.path.join(d, "%d.raw" % i), "rb") as f:
                out[key] = _frames(f.read(), w, h)
        return out


def write_ppm(path, w, h, rgb):
    with open(path, "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (w, h))
        f.write(rgb)
