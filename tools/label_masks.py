"""How the hand-labelled target masks of real cutouts (src/specmorph/imaging/real_dev_masks.json) were made.

The deblending of `imaging.segment` is judged against masks a person chose, on real cutouts of
../shared/data/real_dev. Labelling is done on pieces: each cutout's detection region (the central
component of the triangle threshold, as the segment stage finds it) is cut into many small pieces by
`imaging.segment.deblend` at a very low contrast (LABEL_CONTRAST), and the labeller looks at the
cutout beside the numbered pieces and writes down which pieces belong to the target galaxy at the
centre (its arms, tails and knots included; touching galaxies, stars and their halos left out), or
that the target is ambiguous (a close pair or merger with no single "galaxy at the centre"). The
union of the chosen pieces is stored as polygons (`cv2.findContours`, `cv2.approxPolyDP` within 2 px).
So the labels decide which parts of the detected region are the galaxy; they do not judge the
detection threshold itself.

Usage:
    python tools/label_masks.py render --real-dir ../shared/data/real_dev --out /tmp/label
        (look at /tmp/label/view_NN.png and write /tmp/label/choices.json:
         {"NN": [piece, ...] or "ambiguous", ...}; images with one piece default to [1])
    python tools/label_masks.py write --work /tmp/label --out src/specmorph/imaging/real_dev_masks.json
    python tools/label_masks.py figure --real-dir ../shared/data/real_dev --out docs/deblend_examples.jpg
        (the README's before/after figure: the labelled cutouts deblending changes most)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from specmorph.imaging.deblend_check import LABELS, label_mask
from specmorph.imaging.segment import SegmentParams, deblend, detect, segment
from specmorph.io.images import read_image

SEED = 2026
PER_SET = 20  # cutouts drawn from each real set
LABEL_CONTRAST = 0.003  # pieces for labelling: far finer than the deblending's own contrast
LABEL_LEVELS = 32
SETS = {"gz1": ("gz1/labels.csv", "objid", "gz1/images/{}.jpeg"),
        "kaggle": ("kaggle/labels.csv", "galaxy_id", "kaggle/images/{}.jpg")}


def picks(real_dir: Path) -> list[str]:
    """PER_SET seeded random cutouts of each set, as paths relative to `real_dir`."""
    rng = np.random.default_rng(SEED)
    out = []
    for labels, column, pattern in SETS.values():
        ids = pd.read_csv(real_dir / labels)[column].to_numpy()
        out += [pattern.format(i) for i in rng.choice(ids, PER_SET, replace=False)]
    return out


def pieces(rgb: np.ndarray, sp: SegmentParams) -> np.ndarray:
    """(H, W) int32: the central detection region cut into labelling pieces 1..K (0 elsewhere)."""
    blurred, threshold, region = detect(rgb, sp.sigma)
    return deblend(blurred, region, threshold, LABEL_LEVELS, LABEL_CONTRAST)


def render(real_dir: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    sp = SegmentParams()
    paths = picks(real_dir)
    for i, rel in enumerate(paths):
        rgb = read_image(real_dir / rel)
        cut = pieces(rgb, sp)
        np.save(out / f"pieces_{i:02d}.npy", cut.astype(np.int16))
        view = rgb.copy()
        for k in np.unique(cut[cut > 0]):
            edge = cv2.morphologyEx((cut == k).astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
            view[edge > 0] = (0, 255, 0)
            ys, xs = np.nonzero(cut == k)
            cv2.putText(view, str(k), (int(xs.mean()) - 6, int(ys.mean()) + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                        (255, 255, 0), 2)
        h, w = rgb.shape[:2]
        cv2.drawMarker(view, (w // 2, h // 2), (255, 255, 255), cv2.MARKER_CROSS, 12, 1)
        cv2.imwrite(str(out / f"view_{i:02d}.png"), np.concatenate([rgb, view], 1)[..., ::-1])
    (out / "picks.json").write_text(json.dumps(paths, indent=1))


def polygons(mask: np.ndarray) -> list[list[int]]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [cv2.approxPolyDP(c, 2.0, True).reshape(-1).astype(int).tolist() for c in contours]


def write(work: Path, out: Path) -> None:
    paths = json.loads((work / "picks.json").read_text())
    choices = json.loads((work / "choices.json").read_text())
    masks = []
    for i, rel in enumerate(paths):
        cut = np.load(work / f"pieces_{i:02d}.npy")
        chosen = choices.get(f"{i:02d}", [1])
        entry = {"path": rel, "shape": list(cut.shape)}
        if chosen == "ambiguous":
            entry.update(ambiguous=True, polygons=[])
        else:
            entry.update(ambiguous=False, polygons=polygons(np.isin(cut, chosen)))
        masks.append(entry)
    doc = {"how": __doc__.split("\n\n")[1].replace("\n", " "), "seed": SEED, "per_set": PER_SET,
           "label_contrast": LABEL_CONTRAST, "masks": masks}
    out.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {len(masks)} masks ({sum(m['ambiguous'] for m in masks)} ambiguous) to {out}")


def _outline(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int]) -> None:
    edge = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    image[edge] = colour


def figure(real_dir: Path, out: Path, n: int = 6, tile: int = 212) -> None:
    """Labelled cutouts where deblending changes the mask most: the mask without (green) and with (magenta)
    deblending over the cutout, the hand label (white) beside it."""
    doc = json.loads(LABELS.read_text())
    sp = SegmentParams(recentre=False)
    rows = []
    for entry in doc["masks"]:
        if entry["ambiguous"]:
            continue
        rgb = read_image(real_dir / entry["path"])
        before, after = segment(rgb, SegmentParams(recentre=False, deblend=False)).mask, segment(rgb, sp).mask
        rows.append(((before & ~after).sum() / max(before.sum(), 1), rgb, before, after, label_mask(entry)))
    tiles = []
    for _, rgb, before, after, label in sorted(rows, key=lambda r: -r[0])[:n]:
        left, right = rgb.copy(), rgb.copy()
        _outline(left, before, (0, 255, 0))
        _outline(left, after, (255, 0, 255))
        _outline(right, label, (255, 255, 255))
        pair = np.concatenate([cv2.resize(left, (tile, tile), interpolation=cv2.INTER_AREA),
                               cv2.resize(right, (tile, tile), interpolation=cv2.INTER_AREA)], 1)
        tiles.append(pair)
    grid = np.concatenate([np.concatenate(tiles[i:i + 2], 1) for i in range(0, len(tiles), 2)], 0)
    cv2.imwrite(str(out), grid[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {out} ({len(tiles)} cutouts)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render")
    r.add_argument("--real-dir", type=Path, default=Path("../shared/data/real_dev"))
    r.add_argument("--out", type=Path, required=True)
    w = sub.add_parser("write")
    w.add_argument("--work", type=Path, required=True)
    w.add_argument("--out", type=Path, required=True)
    f = sub.add_parser("figure")
    f.add_argument("--real-dir", type=Path, default=Path("../shared/data/real_dev"))
    f.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.cmd == "render":
        render(args.real_dir, args.out)
    elif args.cmd == "write":
        write(args.work, args.out)
    else:
        figure(args.real_dir, args.out)


if __name__ == "__main__":
    main()
