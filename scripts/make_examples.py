#!/usr/bin/env python
"""Re-create ``examples/hazy_motorcycle.jpg`` (and its clean original) used by the README.

scikit-image's ``motorcycle_left`` photograph with physically based haze: depth from its bundled
stereo disparity (∝ 1/disparity), t = exp(−β·depth), fixed β and airlight (deterministic).
741×500 on purpose: not a multiple of 4, so the padding path is exercised.
"""

from __future__ import annotations

from pathlib import Path

from hdm_deploy.runtime.image_io import write_image
from hdm_deploy_dev.synthetic import Haze, load_photo, motorcycle_depth

OUT = Path(__file__).resolve().parent.parent / "examples"


def main() -> None:
    clean = load_photo("motorcycle_left")
    hazy = Haze(beta=1.6, airlight=(0.86, 0.86, 0.88)).apply(clean, motorcycle_depth())
    write_image(OUT / "hazy_motorcycle.jpg", hazy, quality=92)
    write_image(OUT / "clean_motorcycle.jpg", clean, quality=92)
    print(f"wrote {OUT / 'hazy_motorcycle.jpg'} and {OUT / 'clean_motorcycle.jpg'}")


if __name__ == "__main__":
    main()
