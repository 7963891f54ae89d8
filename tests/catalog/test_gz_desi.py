"""Galaxy Zoo DESI vote tables read by their published column names and mapped to the 8 classes as GZ2 rows are."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from specmorph.catalog.gz_desi import FRACTION_COLUMNS, REQUIRED_COLUMNS, desi_class, gz_desi_as_gz2, is_gz_desi
from specmorph.catalog.labels import gz2_to_taxonomy
from specmorph.catalog.selection import COL_SMOOTH, COL_SPIRAL, select_high_confidence
from specmorph.errors import InputError
from specmorph.io.catalogs import read_gz2

TOOL = Path(__file__).resolve().parents[2] / "tools" / "gz_desi_to_gz2.py"
_spec = importlib.util.spec_from_file_location("gz_desi_to_gz2", TOOL)
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)

# One row per path through the tree: the answers with the most votes (every other answer gets less).
PATHS = {
    "round smooth": ({"smooth-or-featured_smooth": 0.8, "how-rounded_round": 0.7}, "Er", "round_smooth"),
    "cigar smooth": ({"smooth-or-featured_smooth": 0.6, "how-rounded_cigar-shaped": 0.5}, "Ec", "cigar_smooth"),
    "edge-on, no bulge": ({"smooth-or-featured_featured-or-disk": 0.9, "disk-edge-on_yes": 0.8,
                           "edge-on-bulge_none": 0.6}, "Sen", "edge_on_without_bulge"),
    "edge-on, boxy bulge": ({"smooth-or-featured_featured-or-disk": 0.9, "disk-edge-on_yes": 0.8,
                             "edge-on-bulge_boxy": 0.6}, "Seb", "edge_on_with_bulge"),
    # weak bars alone lose to "no", but strong + weak beat it: barred, as GZ2's yes / no question
    "weak + strong bar": ({"smooth-or-featured_featured-or-disk": 0.9, "disk-edge-on_no": 0.9, "bar_strong": 0.3,
                           "bar_weak": 0.3, "bar_no": 0.4, "bulge-size_moderate": 0.5, "has-spiral-arms_yes": 0.9,
                           "spiral-arm-count_2": 0.6, "spiral-winding_medium": 0.5}, "SBb2m", "barred_spiral"),
    "tight spiral": ({"smooth-or-featured_featured-or-disk": 0.9, "disk-edge-on_no": 0.9, "bar_no": 0.8,
                      "bulge-size_small": 0.5, "has-spiral-arms_yes": 0.9, "spiral-arm-count_cant-tell": 0.5,
                      "spiral-winding_tight": 0.6}, "Sc?t", "unbarred_tight_spiral"),
    "loose spiral": ({"smooth-or-featured_featured-or-disk": 0.9, "disk-edge-on_no": 0.9, "bar_no": 0.8,
                      "bulge-size_none": 0.5, "has-spiral-arms_yes": 0.9, "spiral-arm-count_more-than-4": 0.5,
                      "spiral-winding_loose": 0.6}, "Sd+l", "unbarred_loose_spiral"),
    "disc without arms": ({"smooth-or-featured_featured-or-disk": 0.9, "disk-edge-on_no": 0.9, "bar_no": 0.8,
                           "bulge-size_dominant": 0.5, "has-spiral-arms_no": 0.7}, "Sa", None),
    "artifact": ({"smooth-or-featured_artifact": 0.7}, "A", None),
}


def desi_rows(paths=PATHS) -> pd.DataFrame:
    """Rows in the GZ DESI catalogue's layout (its published column names), every unset fraction small."""
    rng = np.random.default_rng(0)
    rows = []
    for i, (votes, _, _) in enumerate(paths.values()):
        row = {"dr8_id": f"{331000 + i}_{1500 + i}", "ra": 150.0 + i, "dec": 2.0 - i,
               "iauname": f"J1000{i:02d}+0200", "brickid": 331000 + i, "objid": 1500 + i}
        row |= {c: rng.uniform(0.0, 0.05) for c in FRACTION_COLUMNS}
        row |= {f"{k}_fraction": v for k, v in votes.items()}
        rows.append(row)
    return pd.DataFrame(rows)


def test_every_path_through_the_tree_gives_the_gz2_class_and_label_a_gz2_row_would():
    df = desi_rows()
    classes = desi_class(df)
    assert list(classes) == [p[1] for p in PATHS.values()]
    assert [gz2_to_taxonomy(c) for c in classes] == [p[2] for p in PATHS.values()]
    assert is_gz_desi(df.columns) and not is_gz_desi(["dr7objid", "ra", "dec", "gz2_class"])


def test_the_table_reads_back_as_a_gz2_table_with_the_five_class_columns(tmp_path):
    df = desi_rows()
    out = gz_desi_as_gz2(df)
    assert list(out["dr7objid"]) == [(331000 + i) * 1_000_000 + 1500 + i for i in range(len(df))]
    assert list(out["dr8_id"]) == list(df["dr8_id"])
    assert list(out[COL_SMOOTH]) == list(df["smooth-or-featured_smooth_fraction"])
    assert list(out[COL_SPIRAL]) == list(df["has-spiral-arms_yes_fraction"])
    out.to_csv(tmp_path / "gz2.csv", index=False)
    back = read_gz2(tmp_path / "gz2.csv")
    assert list(back["gz2_class"]) == list(out["gz2_class"])
    five = select_high_confidence(back)
    assert five.iloc[0] == "round" and five.iloc[2] == "edge_on"  # Er at 0.8 / 0.7; Sen at 0.9 / 0.8


def test_bad_rows_and_missing_columns_are_named():
    df = desi_rows()
    with pytest.raises(InputError, match=r"row 3: dr8_id='x_1'"):
        gz_desi_as_gz2(df.assign(dr8_id=[*df["dr8_id"][:3], "x_1", *df["dr8_id"][4:]]))
    with pytest.raises(InputError, match="bar_weak_fraction"):
        gz_desi_as_gz2(df.drop(columns=["bar_weak_fraction"]))
    with pytest.raises(InputError, match="'bar_no_fraction' is not numeric"):
        desi_class(df.assign(bar_no_fraction="many"))
    assert "dr8_id" in REQUIRED_COLUMNS


def test_the_tool_writes_the_table_and_links_the_images_by_their_new_key(tmp_path, capsys):
    df = desi_rows()
    df.to_parquet(tmp_path / "gz_desi.parquet")
    images = tmp_path / "desi_images"
    for k, dr8_id in enumerate(df["dr8_id"][:-1]):  # flat, or in <brickid>/ folders; the last row has none
        folder = images / dr8_id.split("_")[0] if k % 2 else images
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{dr8_id}.jpg").write_bytes(dr8_id.encode())
    code = tool.main([str(tmp_path / "gz_desi.parquet"), str(tmp_path / "gz2.csv"), "--image-dir", str(images),
                      "--out-image-dir", str(tmp_path / "gz2_images")])
    assert code == 0
    table = read_gz2(tmp_path / "gz2.csv")
    assert len(table) == len(df) - 1 and df["dr8_id"].iloc[-1] in capsys.readouterr().err
    for objid, dr8_id in zip(table["id_str"], table["dr8_id"], strict=True):
        assert (tmp_path / "gz2_images" / f"{objid}.jpg").read_bytes() == str(dr8_id).encode()
    assert tool.main([str(tmp_path / "gz2.csv"), str(tmp_path / "again.csv")]) == 1  # a GZ2 table is not GZ DESI's
