"""The deblending check: hand-label IoU and contamination with known answers on a synthetic labelled set."""

import json

import cv2
import numpy as np
from PIL import Image

from specmorph.imaging.deblend_check import LABELS, changed_on_real, check_labels, label_mask
from specmorph.imaging.segment import SegmentParams, segment

SIZE = 200
YY, XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)


def _pair(tmp_path, name: str) -> tuple[str, np.ndarray]:
    """A target at the centre touching a neighbour on its right; writes the PNG, returns it and the target's disc."""
    rng = np.random.default_rng(len(name))
    c = (SIZE - 1) / 2
    img = 20 + 3 * rng.standard_normal((SIZE, SIZE))
    img += 150 * np.exp(-np.hypot(YY - c, XX - c) / 9) + 120 * np.exp(-np.hypot(YY - c, XX - c - 45) / 8)
    gray = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    (tmp_path / "set").mkdir(exist_ok=True)
    Image.fromarray(np.repeat(gray[:, :, None], 3, axis=2)).save(tmp_path / "set" / f"{name}.png")
    whole = segment(np.repeat(gray[:, :, None], 3, axis=2), SegmentParams(recentre=False, deblend=False)).mask
    return f"set/{name}.png", whole & (XX < c + 22.5)  # the label: the detected region up to the valley


def _write_labels(tmp_path, entries) -> str:
    masks = []
    for path, mask, ambiguous in entries:
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        masks.append({"path": path, "shape": [SIZE, SIZE], "ambiguous": ambiguous,
                      "polygons": [c.reshape(-1).tolist() for c in contours]})
    out = tmp_path / "labels.json"
    out.write_text(json.dumps({"masks": masks}))
    return str(out)


def test_deblending_removes_the_neighbour_the_label_leaves_out(tmp_path):
    a_path, a_label = _pair(tmp_path, "a")
    b_path, b_label = _pair(tmp_path, "bb")
    labels = _write_labels(tmp_path, [(a_path, a_label, False), (b_path, b_label, True)])
    out = check_labels(tmp_path, SegmentParams(), labels)
    assert out["n_labelled"] == 1 and out["n_missing"] == 0  # the ambiguous one is left out of the figures
    assert out["iou_before"]["median"] < 0.8 and out["contamination_before"]["max"] > 0.2  # merged: neighbour in
    assert out["iou_after"]["median"] > 0.9 and out["contamination_after"]["max"] < 0.1
    assert out["n_contaminated_over_0.1_before"] == 1 and out["n_contaminated_over_0.1_after"] == 0
    assert out["ambiguous"]["labelled_ambiguous"] == 1


def test_without_the_real_set_nothing_is_made_up(tmp_path):
    assert check_labels(tmp_path / "none", SegmentParams()) == {"skipped": f"no real set at {tmp_path / 'none'}"}
    assert changed_on_real(tmp_path / "none", SegmentParams()) == {"skipped": f"no real set at {tmp_path / 'none'}"}


def test_changed_fraction_counts_the_split_images(tmp_path):
    _pair(tmp_path, "a")
    single = np.full((SIZE, SIZE, 3), 20, np.uint8)
    cv2.circle(single, (100, 100), 20, (150, 150, 150), -1)
    Image.fromarray(single).save(tmp_path / "set" / "single.png")
    out = changed_on_real(tmp_path, SegmentParams())
    assert out["n_images"] == 2 and out["changed_fraction"] == 0.5 and 0 < out["mean_flux_removed"] < 0.5


def test_the_shipped_labels_are_well_formed():
    doc = json.loads(LABELS.read_text())
    assert len(doc["masks"]) == 40 and "how" in doc
    for entry in doc["masks"]:
        mask = label_mask(entry)
        assert mask.any() != entry["ambiguous"]  # a clear cutout has a mask, an ambiguous one none
        if mask.any():
            h, w = mask.shape
            assert mask[h // 2 - 15:h // 2 + 16, w // 2 - 15:w // 2 + 16].any()  # the target is at the centre


def test_non_images_are_not_counted(tmp_path):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "notes.txt").write_text("x")
    assert changed_on_real(tmp_path, SegmentParams()) == {"skipped": f"no readable image under {tmp_path}"}
