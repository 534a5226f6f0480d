"""``digits-synthetic``: printed digits 0-9 rendered from the system's fonts, in the real digits' format.

The labelled source of the synthetic -> real domain-adaptation pair: the target is ``builtin:digits``
(scikit-learn's real handwritten digits). Each digit is drawn with one font, a random stroke width,
rotation, shear and aspect, then pushed through the UCI preprocessing the real set went through:
a size-normalised 32x32 binary bitmap, 4x4 blocks counted (0..16 ink), a few flipped pixels. What
is left between the two sets is the domain gap itself: type versus handwriting.

Fonts are every TrueType/OpenType file under the font folders (Debian's ``fonts-*`` packages) whose
ten digits render as ten distinct glyphs; symbol fonts fall out by that test. With no font at all,
Pillow's built-in scalable font is used (one font: a much easier, less varied set).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..atomic import atomic_dir
from .builtin import check_dataset_out, mark_dataset

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")
FONT_SUFFIXES = (".ttf", ".otf")
NOT_DIGITS = ("D050000L", "Dingbats")  # fonts whose 0-9 are pictures, not digits
GLYPH = 96  # px: the canvas a digit is first drawn on
BITMAP = 32  # the UCI bitmap, then 4x4 blocks -> 8x8


def font_files() -> list[str]:
    """Every usable font file, sorted by name (the dataset's content depends on this list)."""
    found: dict[str, str] = {}
    for root in FONT_DIRS:
        base = Path(os.path.expanduser(root))
        if base.is_dir():
            for f in base.rglob("*"):
                if f.suffix.lower() in FONT_SUFFIXES and f.stem not in found and not f.stem.startswith(NOT_DIGITS):
                    found[f.stem] = str(f)
    return [found[k] for k in sorted(found) if _draws_digits(found[k])]


def fonts_key(fonts: list[str]) -> str:
    """A short hash of the font names: a cached copy rendered from other fonts is another dataset."""
    return hashlib.sha256("\n".join(Path(f).name for f in fonts).encode()).hexdigest()[:8]


def _font(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size)


def _draws_digits(path: str) -> bool:
    """Ten distinct, non-empty glyphs for 0-9 without a shared frame (symbol fonts fail: boxes, keycaps, circles)."""
    try:
        font = _font(path, 40)
        glyphs = []
        for d in "0123456789":
            img = Image.new("L", (64, 64), 0)
            ImageDraw.Draw(img).text((8, 4), d, fill=255, font=font)
            glyphs.append(np.asarray(img) > 127)
    except OSError:
        return False
    distinct = len({g.tobytes() for g in glyphs}) == 10
    smallest = min(int(g.sum()) for g in glyphs)
    framed = np.logical_and.reduce(glyphs).sum() > smallest / 2  # digits on keycaps or in circles share their frame
    return distinct and not framed and smallest >= 20  # hairline weights vanish in the 32x32 bitmap


def render_digit(digit: int, font_path: str | None, rng: np.random.Generator) -> np.ndarray:
    """One digit as the UCI set stores it: 8x8 counts of ink, 0..16."""
    stroke = int(rng.integers(0, 4))
    img = Image.new("L", (GLYPH * 2, GLYPH * 2), 0)
    ImageDraw.Draw(img).text(
        (GLYPH // 2, GLYPH // 3), str(digit), fill=255, font=_font(font_path, GLYPH), stroke_width=stroke, stroke_fill=255
    )
    shear = float(rng.uniform(-0.35, 0.35))
    angle = float(rng.uniform(-15, 15))
    img = img.transform(img.size, Image.Transform.AFFINE, (1, shear, -shear * GLYPH, 0, 1, 0), Image.Resampling.BILINEAR)
    img = img.rotate(angle, Image.Resampling.BILINEAR)
    box = img.getbbox()
    if box is None:  # nothing drawn (cannot happen for a font that passed _draws_digits)
        return np.zeros((8, 8), dtype=np.uint8)
    glyph = img.crop(box)
    w, h = glyph.size
    aspect = float(rng.uniform(0.75, 1.3))  # narrower or wider hands
    scale = BITMAP / max(h, w * aspect)  # the UCI size normalisation: the longer side fills the bitmap
    size = (max(1, round(w * aspect * scale)), max(1, round(h * scale)))
    glyph = glyph.resize(size, Image.Resampling.BILINEAR)
    bitmap = np.zeros((BITMAP, BITMAP), dtype=bool)
    x0, y0 = (BITMAP - size[0]) // 2, (BITMAP - size[1]) // 2
    bitmap[y0 : y0 + size[1], x0 : x0 + size[0]] = np.asarray(glyph) > 100
    flips = rng.random(bitmap.shape) < float(rng.uniform(0.0, 0.03))  # scanner noise
    bitmap ^= flips
    return bitmap.reshape(8, 4, 8, 4).sum(axis=(1, 3)).astype(np.uint8)


def write_digits_synthetic(out: Path, per_font: int = 3, seed: int = 0, overwrite: bool = False) -> Path:
    """Write ``out/<digit>/*.png`` (8x8, dark ink on white, as ``builtin:digits``), ``per_font`` drawings of
    each digit per font; atomically, an earlier copy only with ``overwrite``."""
    out = Path(out)
    check_dataset_out(out, "digits-synthetic", {str(d) for d in range(10)}, overwrite)
    fonts: list[str | None] = list(font_files()) or [None]
    rng = np.random.default_rng(seed)
    with atomic_dir(out) as tmp:
        n = 0
        for digit in range(10):
            (tmp / str(digit)).mkdir()
        for fi, font in enumerate(fonts):
            for digit in range(10):
                for k in range(per_font):
                    counts = render_digit(digit, font, rng)
                    pixels = (255 - np.clip(counts.astype(np.int32) * 16, 0, 255)).astype(np.uint8)
                    Image.fromarray(pixels, mode="L").save(tmp / str(digit) / f"f{fi:03d}-{k}.png")
                    n += 1
        mark_dataset(
            tmp,
            "digits-synthetic",
            fonts=[Path(f).name if f else "Pillow built-in" for f in fonts],
            per_font=per_font,
            seed=seed,
            images=n,
        )
    return out
