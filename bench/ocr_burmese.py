"""Recall of Burmese names in pixels: how often OCR finds a registered Burmese name rendered in
an image, how often it flags the image as doubtful instead (a legal officer reads it), and how
often it does neither (a silent miss, the number that matters).

Fictional names of two or three syllables are set in a short sentence with Noto Sans Myanmar
(Debian's fonts-noto-core) at several sizes and conditions (clean, greyed, slightly blurred,
small), as a line on a page; each image goes through the leak check's pixels layer
(:class:`portal.redaction.leakcheck.PixelReading`) with the name as the only term. Latin and
Arabic names are measured the same way for comparison.

    .venv/bin/python bench/ocr_burmese.py              # 40 names per script and condition
    .venv/bin/python bench/ocr_burmese.py --names 10
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from portal.redaction.leakcheck import PixelReading, check_files

NOTO = Path("/usr/share/fonts/truetype/noto")
SYLLABLES = {
    "burmese": [
        "မောင်",
        "အောင်",
        "ကျော်",
        "မြ",
        "သန္တာ",
        "စန်း",
        "ခင်",
        "နွယ်",
        "ထွန်း",
        "လှ",
        "မင်း",
        "ဇော်",
        "သီ",
        "ဟန်",
        "ဝင်း",
        "နီ",
    ],
    "latin": ["Ma", "Rin", "Tor", "Vel", "Sana", "Dor", "Kel", "Ira", "Mon", "Tes", "Lio", "Bran"],
    "arabic": ["سل", "ما", "ور", "دا", "ني", "حا", "مد", "نو", "را", "كر", "يم", "بو"],
}
SENTENCES = {
    "burmese": "သက်သေ {name} က ပြောသည်",
    "latin": "The witness {name} spoke at noon",
    "arabic": "قال الشاهد {name} في الظهر",
}
FONTS = {
    "burmese": "NotoSansMyanmar-Regular.ttf",
    "latin": "NotoSans-Regular.ttf",
    "arabic": "NotoNaskhArabic-Regular.ttf",
}
# condition -> (font size in pixels at 200 dpi, grey level, blur radius)
CONDITIONS = {
    "clean 40px": (40, 0, 0.0),
    "grey 32px": (32, 110, 0.0),
    "blur 1.2": (34, 0, 1.2),
    "small 20px": (20, 0, 0.0),
}


def fictional_name(script: str, rng: random.Random) -> str:
    parts = rng.sample(SYLLABLES[script], rng.choice((2, 3)))
    if script == "latin":
        last = "".join(parts[2:]) or rng.choice(SYLLABLES[script])
        return f"{''.join(parts[:2]).capitalize()} {last.capitalize()}"
    if script == "arabic":
        return f"{''.join(parts[:2])} {''.join(parts[1:])}"
    return "".join(parts)


def render(path: Path, script: str, name: str, condition: tuple[int, int, float]) -> None:
    size, grey, blur = condition
    font = ImageFont.truetype(str(NOTO / FONTS[script]), size)
    text = SENTENCES[script].format(name=name)
    image = Image.new("L", (1400, 220), 255)
    draw = ImageDraw.Draw(image)
    if script == "arabic":
        draw.text((1340, 80), text, font=font, fill=grey, anchor="ra")
    else:
        draw.text((60, 80), text, font=font, fill=grey)
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    image.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"{args.names} fictional names per script and condition; Tesseract via the leak check")
    print(
        f"{'script':<8} {'condition':<11} {'found':>6} {'flagged':>8} {'missed':>7} {'s/image':>8}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-ocr-") as folder:
        for script in ("burmese", "latin", "arabic"):
            for label, condition in CONDITIONS.items():
                counts: Counter[str] = Counter()
                began = time.perf_counter()
                for index in range(args.names):
                    name = fictional_name(script, rng)
                    path = Path(folder) / f"{script}-{index}.png"
                    render(path, script, name, condition)
                    report = check_files([("i.png", path)], [("T1", name)], pixels=PixelReading())
                    if report.hits:
                        counts["found"] += 1
                    elif report.unchecked:
                        counts["flagged"] += 1
                    else:
                        counts["missed"] += 1
                seconds = (time.perf_counter() - began) / args.names
                total = args.names
                print(
                    f"{script:<8} {label:<11} {counts['found'] / total:6.0%} "
                    f"{counts['flagged'] / total:8.0%} {counts['missed'] / total:7.0%} "
                    f"{seconds:8.2f}"
                )


if __name__ == "__main__":
    main()
