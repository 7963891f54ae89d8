"""Tests of the image-table helpers: the galaxy owning each GZ2 row and the GZ2 image paths."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from specmorph.catalog import sample
from specmorph.catalog.sample import attach_gz2_images, cube_and_label, galaxy_of_gz2
from specmorph.errors import InputError


def test_galaxy_of_gz2_matched_first_then_first_duplicate():
    gz2 = pd.DataFrame({"id_str": ["1", "2", "3", "4", "5"]}, index=[10, 11, 12, 13, 14])
    matched = pd.DataFrame({"califa": ["A", "B"], "gz2": ["2", "4"]})
    duplicates = pd.DataFrame({"califa": ["C", "A", "D"], "gz2": ["4", "5", "5"]})
    galaxy = galaxy_of_gz2(gz2, matched, duplicates)
    assert galaxy.tolist() == ["1", "A", "3", "B", "A"]  # a match beats a duplicate; the first duplicate wins
    assert list(galaxy.index) == [10, 11, 12, 13, 14] and galaxy.name == "id_str"
    assert galaxy.dtype == gz2["id_str"].astype(str).dtype
    assert galaxy_of_gz2(gz2, matched.iloc[:0], duplicates.iloc[:0]).tolist() == ["1", "2", "3", "4", "5"]


def test_galaxy_of_gz2_compares_ids_as_strings():
    gz2 = pd.DataFrame({"id_str": [1, 2, 3]})
    galaxy = galaxy_of_gz2(gz2, pd.DataFrame({"califa": ["A"], "gz2": [2]}), pd.DataFrame({"califa": [], "gz2": []}))
    assert galaxy.tolist() == ["1", "A", "3"]
    gz2 = pd.DataFrame({"id_str": ["7", np.nan, "9"]})
    galaxy = galaxy_of_gz2(gz2, pd.DataFrame({"califa": ["B"], "gz2": ["9"]}), pd.DataFrame({"califa": [], "gz2": []}))
    assert galaxy.tolist()[::2] == ["7", "B"] and pd.isna(galaxy.iloc[1])


@pytest.fixture(params=["per_file", "listing"])
def image_dir(request, tmp_path: Path, monkeypatch) -> Path:
    """Images, a directory named like one, a link and a broken link; checked file by file or from one listing."""
    monkeypatch.setattr(sample, "LIST_IMAGE_DIR_FROM_ROWS", 10**9 if request.param == "per_file" else 0)
    d = tmp_path / "images"
    (d / "sub").mkdir(parents=True)
    for name in ("1.jpg", "2.jpg", "sub/5.jpg"):
        (d / name).write_bytes(b"\xff\xd8")
    (d / "3.jpg").mkdir()  # a directory is not an image
    os.symlink(d / "1.jpg", d / "4.jpg")  # a link to an image is one
    os.symlink(d / "gone.jpg", d / "6.jpg")  # a broken link is not
    return d


def test_attach_gz2_images_paths(image_dir: Path, monkeypatch):
    gz2 = pd.DataFrame({"id_str": ["1", "2", "4", "sub/5"], "ra": [1.0, 2.0, 3.0, 4.0]})
    out = attach_gz2_images(gz2, image_dir)
    assert out["path"].tolist() == [str(image_dir / n) for n in ("1.jpg", "2.jpg", "4.jpg", "sub/5.jpg")]
    assert "path" not in gz2.columns and out["ra"].tolist() == gz2["ra"].tolist()
    monkeypatch.chdir(image_dir)
    assert attach_gz2_images(gz2, ".")["path"].tolist() == ["1.jpg", "2.jpg", "4.jpg", "sub/5.jpg"]
    assert attach_gz2_images(gz2, "sub/..")["path"].tolist()[0] == "sub/../1.jpg"


def test_attach_gz2_images_names_the_missing_ones(image_dir: Path):
    gz2 = pd.DataFrame({"id_str": ["1", "3", "6", "7", "sub/8", "sub/5"]})
    with pytest.raises(InputError, match=r"images: 4 GZ2 image\(s\) missing, e\.g\. 3\.jpg, 6\.jpg, 7\.jpg, 8\.jpg$"):
        attach_gz2_images(gz2, image_dir)
    with pytest.raises(InputError, match=r"nowhere: 2 GZ2 image\(s\) missing, e\.g\. 1\.jpg, 2\.jpg$"):
        attach_gz2_images(gz2.iloc[:1].assign(id_str=["1"]).pipe(lambda d: pd.concat([d, d.assign(id_str="2")])),
                          image_dir / "nowhere")


def test_cube_and_label_counts_each_galaxy_once_per_survey_class_and_split():
    table = pd.DataFrame({
        "galaxy_id": ["NGC1", "NGC1", "8485-1901", "8485-1901", "NGC2", "587"],
        "califa_name": ["NGC1", "NGC1", "8485-1901", "8485-1901", "NGC2", ""],
        "label": [0, 0, 5, 5, -1, 3],  # NGC2 has a cube but no label; 587 a label but no cube
        "label_name": ["barred_spiral", "barred_spiral", "round_smooth", "round_smooth", "", "edge_on_without_bulge"],
        "split": ["train", "train", "test", "test", "unlabelled", "train"]})
    got = cube_and_label(table, {"NGC1": "califa", "8485-1901": "manga", "NGC2": "califa"})
    assert got["galaxies"] == 2 and got["by_split"] == {"train": 1, "test": 1}
    assert got["by_survey"]["califa"]["galaxies"] == 1 and got["by_survey"]["califa"]["barred_spiral"] == 1
    assert got["by_survey"]["manga"]["round_smooth"] == 1 and sum(
        v for k, v in got["by_survey"]["manga"].items() if k != "galaxies") == 1
