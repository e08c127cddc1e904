#!/usr/bin/python3
# Pillow's own antialiased resize of a synthetic 97×61 RGB picture, for test-preprocess
# (test_pil_fixture). Made once with Debian 12's python3-pil (Pillow 9.4.0); the test does
# not need Python or Pillow. The picture is a formula the test computes too:
#   value(x, y, c) = (x·37 + y·91 + c·53 + ((x·y) mod 17)·13 + (x ^ y)·5) mod 256
import PIL
from PIL import Image

W, H = 97, 61
SIZES = [(31, 20), (150, 90), (40, 61), (13, 120), (97, 30), (200, 13)]

def pixel(x, y, c):
    return (x * 37 + y * 91 + c * 53 + ((x * y) % 17) * 13 + (x ^ y) * 5) % 256

src = Image.frombytes("RGB", (W, H),
                      bytes(pixel(x, y, c) for y in range(H) for x in range(W) for c in range(3)))
for name, flt in (("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC)):
    with open("pil-%s.rgb" % name, "wb") as f:
        for w, h in SIZES:
            f.write(src.resize((w, h), resample=flt).tobytes())
print("Pillow", PIL.__version__)
