"""`edgetl report` on a bundle, opened in headless Chromium: a full-page screenshot for benchmarks/results.

    .venv/bin/python benchmarks/report_screenshot.py --bundle runs/demo

Writes BUNDLE/report.html (edgetl report) and benchmarks/results/report_<name>.png (the page as
Chromium renders it offline, 1280 px wide, the white space under the page trimmed).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import edgetl

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--hide-scrollbars",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", default="runs/demo")
    ap.add_argument("--name", default=None)
    ap.add_argument("--chromium", default="chromium")
    args = ap.parse_args()
    bundle = Path(args.bundle)
    page = edgetl.write_report(bundle)
    out = Path(__file__).parent / "results" / f"report_{args.name or bundle.name}.png"
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "shot.png"
        subprocess.run([args.chromium, *FLAGS, f"--user-data-dir={tmp}/profile", "--window-size=1280,12000",
                        f"--screenshot={shot}", page.resolve().as_uri()], capture_output=True, timeout=180, check=True)  # fmt: skip
        im = Image.open(shot).convert("RGB")
    rows = np.flatnonzero((np.asarray(im) < 250).any(axis=(1, 2)))
    im = im.crop((0, 0, im.width, min(im.height, int(rows[-1]) + 40 if len(rows) else im.height)))
    im.quantize(256).save(out, optimize=True)  # a palette keeps the committed picture small
    print(f"{page} -> {out} ({im.width} px wide)")


if __name__ == "__main__":
    main()
