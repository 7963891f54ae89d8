"""Renders docs/real_vs_mock.png: the real SDSS/Galaxy Zoo cutouts beside mock ones of the same broad kinds.

Usage: python tools/compare_real_mock.py [--real-dir ../shared/data/sdss_examples] [--out docs/real_vs_mock.png]
Needs the reference cutouts in the shared data folder (not part of a clone); skips with a message without them.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from specmorph.io.atomic import atomic_file
from specmorph.sky.observe import encode_jpeg, render_cutout
from specmorph.sky.population import draw_galaxy
from specmorph.sky.survey import gz2_pixscale
from specmorph.taxonomy import CLASSES

REPO = Path(__file__).resolve().parents[1]
TILE = 116  # px per tile in the figure
SPIRAL_KINDS = ("barred_spiral", "unbarred_tight_spiral", "unbarred_loose_spiral")
SMOOTH_KINDS = ("round_smooth", "in_between_smooth", "cigar_smooth", "edge_on_with_bulge", "edge_on_without_bulge")


def mock_tiles(seed: int, n_spiral: int, n_smooth: int) -> list[tuple[np.ndarray, str]]:
    """Mock cutouts (decoded from their JPEG bytes) with a label: spirals first, then smooth/edge-on."""
    rng = np.random.default_rng(seed)
    kinds = [SPIRAL_KINDS[i % 3] for i in range(n_spiral)] + [SMOOTH_KINDS[i % 5] for i in range(n_smooth)]
    tiles = []
    for i, kind in enumerate(kinds):
        g = draw_galaxy(rng, f"MOCK{i}", 180.0, 10.0, None, label_name=kind, field=True)
        rgb = render_cutout(g, 424, gz2_pixscale(g, 424), rng=np.random.default_rng([seed, i]))
        tiles.append((np.asarray(Image.open(io.BytesIO(encode_jpeg(rgb)))), f"{CLASSES[g.label][:18]} r={g.mag_r:.1f}"))
    return tiles


def grid(tiles: list[tuple[np.ndarray, str]], cols: int) -> Image.Image:
    """Tiles resized to TILE px with a caption each, `cols` per row."""
    rows = (len(tiles) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * TILE, rows * TILE), "black")
    draw = ImageDraw.Draw(sheet)
    for k, (img, text) in enumerate(tiles):
        x, y = (k % cols) * TILE, (k // cols) * TILE
        sheet.paste(Image.fromarray(img).resize((TILE, TILE), Image.BILINEAR), (x, y))
        draw.text((x + 3, y + TILE - 12), text, fill=(200, 200, 200))
    return sheet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-dir", type=Path, default=REPO.parent / "shared" / "data" / "sdss_examples")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "real_vs_mock.png")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    real_paths = sorted(args.real_dir.glob("*.jpg")) if args.real_dir.is_dir() else []
    if not real_paths:
        print(f"skipped: no real cutouts in {args.real_dir} (the shared reference data is not in a clone)")
        return 0
    spiral = [p for p in real_paths if p.name.startswith("spiral")]
    other = [p for p in real_paths if not p.name.startswith("spiral")]
    real = [(np.asarray(Image.open(p).convert("RGB")), p.stem.replace("non_spiral", "smooth")) for p in spiral + other]
    mock = mock_tiles(args.seed, len(spiral), len(other))
    left, right = grid(real, 4), grid(mock, 4)
    head = 20
    sheet = Image.new("RGB", (left.width + right.width + 8, max(left.height, right.height) + head), (40, 40, 40))
    sheet.paste(left, (0, head))
    sheet.paste(right, (left.width + 8, head))
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), "REAL: SDSS / Galaxy Zoo cutouts (spiral, then smooth)", fill=(255, 255, 255))
    draw.text((left.width + 12, 4), "MOCK: specmorph.sky render_cutout (same kinds, GZ2 scale)", fill=(255, 255, 255))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(args.out) as tmp:
        sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            tmp, format="PNG", optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
