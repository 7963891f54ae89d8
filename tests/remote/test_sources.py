"""Archive URLs and templates, the CALIFA table readers (eCALIFA ECSV, DR3 CSV) and the selection; live checks."""

import gzip
import io
import zlib
from pathlib import Path

import fake_archive as fake  # tests/remote, on pytest's pythonpath
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from specmorph.catalog.selection import REQUIRED_COLUMNS
from specmorph.errors import InputError
from specmorph.io.layout import CUBE_SUFFIX, LAYOUT
from specmorph.remote.files import check_image
from specmorph.remote.http import RetryPolicy, fetch
from specmorph.remote.select import expand_types, read_califa_table, select_califa, select_gz2
from specmorph.remote.sources import (
    DR3_CUBE_URL,
    DR3_TABLE_SHA256,
    DR3_TABLE_URL,
    EST_BYTES,
    GALAXY10_URL,
    RemoteSources,
)
from specmorph.taxonomy import CALIFA_TYPES

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "califa"
NGC5947 = (232.65232, 42.71725)  # deg, a CALIFA galaxy in the SDSS and GZ2 footprint
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"



def _morph(n: int = 30, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"name": [f"G{i:03d}" for i in range(n)], "ra": rng.uniform(150, 160, n),
                         "dec": rng.uniform(0, 10, n), "redshift": rng.uniform(0.005, 0.03, n),
                         "hubtyp": [CALIFA_TYPES[i % len(CALIFA_TYPES)] for i in range(n)]})


def test_urls_are_built_from_the_templates():
    src = RemoteSources(cube_url_template=DR3_CUBE_URL)
    assert src.cube_url("NGC5947") == \
        "https://califa.caha.es/FTP-PUB/reduced/V500/reduced_v2.2/NGC5947.V500.rscube.fits.gz"
    assert src.cube_url("SDSSJ100141.02+371447.4").endswith("/SDSSJ100141.02+371447.4.V500.rscube.fits.gz")
    assert src.cube_url("A B/C").endswith("/A%20B%2FC.V500.rscube.fits.gz")
    assert src.cutout_url(232.65232, 42.71725) == ("http://skyservice.pha.jhu.edu/DR10/ImgCutout/getjpeg.aspx"
                                                   "?ra=232.652320&dec=42.717250&scale=0.396127&width=424&height=424")
    assert "scale=0.200000&width=424" in src.gz2_image_url(1.0, -2.0)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("cube_url_template", "https://x/{galaxy}.fits.gz", "needs the field name, or plate and ifudesign"),
    ("manga_cube_url_template", "https://x/{plate}.fits.gz", "needs the field name, or plate and ifudesign"),
    ("cutout_url_template", "https://x/?ra={ra}", r"needs the fields \['dec', 'ra'\]"),
    ("gz2_image_url_template", "https://x/?ra={ra}&dec={dec}&z={z}", r"may use only"),
    ("cube_url_template", "https://x/{name", "not a valid template"),
    ("califa_table_format", "dr2", "expected one of ecalifa, dr3"),
    ("cutout_size", 0, "positive number of pixels"),
    ("gz2_mapping_path", "map.csv", "gz2_image_dir is empty"),
])
def test_bad_templates_and_values_fail_by_name(key, value, message):
    with pytest.raises(ValueError, match=message) as err:
        RemoteSources(**{key: value})
    assert key in str(err.value)


def test_ecalifa_and_dr3_layouts_read_the_same_sample(tmp_path):
    morph = _morph(25)
    morph.loc[3, "hubtyp"] = None
    (tmp_path / "e.csv").write_bytes(fake.ecalifa_table(morph))
    (tmp_path / "d.csv").write_bytes(fake.dr3_table(morph))
    e = read_califa_table(tmp_path / "e.csv", "ecalifa")
    d = read_califa_table(tmp_path / "d.csv", "dr3")
    assert e["name"].tolist() == d["name"].tolist() == morph["name"].tolist()
    np.testing.assert_array_equal(e["ra"], morph["ra"])
    np.testing.assert_array_equal(d["dec"], morph["dec"])
    np.testing.assert_array_equal(e["redshift"], morph["redshift"])
    assert d["redshift"].isna().all()  # DR3 has none: the cubes' MED_VEL gives it
    assert e["hubtyp"].tolist() == d["hubtyp"].tolist() == [t if isinstance(t, str) else None for t in morph["hubtyp"]]
    with pytest.raises(InputError, match="not an ECSV table"):
        read_califa_table(tmp_path / "d.csv", "ecalifa")
    with pytest.raises(InputError, match="7 columns; the DR3 morphology table has 8"):
        (tmp_path / "x.csv").write_text("1, A, A,1.0,2.0,3,0\n")
        read_califa_table(tmp_path / "x.csv", "dr3")


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data (real CALIFA tables) not present")
def test_the_real_califa_tables_read():
    e = read_califa_table(SHARED / "ecalifa_global.csv", "ecalifa")
    assert len(e) == 895 and e["redshift"].between(0.0, 0.2).all()
    assert e["hubtyp"].isna().sum() == 8  # 'U'
    assert e.set_index("name").loc["IC5376", "hubtyp"] == "Sb"
    d = read_califa_table(SHARED / "CALIFA_3_joint_classnum_new_update.csv", "dr3")
    assert len(d) > 1300 and d.set_index("name").loc["NGC0001", "hubtyp"] == "Sbc"  # code 13


def test_type_groups_and_unknown_types():
    assert expand_types(["E", "Sb"]) == {*CALIFA_TYPES[:8], "Sb"}
    with pytest.raises(ValueError, match="'Sx' is not a CALIFA type"):
        expand_types(["Sx"])


def test_select_califa_filters_caps_and_grows_as_a_superset():
    morph = _morph(40)
    small = select_califa(morph, max_galaxies=5, seed=3)
    big = select_califa(morph, max_galaxies=12, seed=3)
    assert len(small) == 5 and set(small["name"]) <= set(big["name"])
    assert small["name"].tolist() == sorted(small["name"])
    assert select_califa(morph.sample(frac=1, random_state=1), max_galaxies=5, seed=3)["name"].tolist() == \
        small["name"].tolist()  # independent of the table's row order
    typed = select_califa(morph, max_galaxies=-1, seed=3, hubble_types=["E"])
    assert set(typed["hubtyp"]) <= set(CALIFA_TYPES[:8]) and len(typed) == (morph["hubtyp"].str[0] == "E").sum()
    gz2 = pd.DataFrame({"dr7objid": ["1", "2"], "ra": morph["ra"].iloc[[4, 9]] + 1 / 3600,
                        "dec": morph["dec"].iloc[[4, 9]]})
    assert select_califa(morph, max_galaxies=-1, seed=3, gz2=gz2, radius_arcsec=3.0)["name"].tolist() == \
        ["G004", "G009"]
    with pytest.raises(ValueError, match="max_galaxies=0"):
        select_califa(morph, max_galaxies=0, seed=3)


def test_select_gz2_keeps_every_matched_row_and_a_seeded_field():
    morph = _morph(10)
    rng = np.random.default_rng(5)
    field = pd.DataFrame({"dr7objid": [str(10**17 + i) for i in range(200)], "ra": rng.uniform(200, 210, 200),
                          "dec": rng.uniform(20, 30, 200)})
    near = pd.DataFrame({"dr7objid": ["7", "8", "9"], "ra": morph["ra"].iloc[[0, 0, 5]] + [0.0, 2 / 3600, 0.0],
                         "dec": morph["dec"].iloc[[0, 0, 5]]})
    gz2 = pd.concat([field.iloc[:100], near, field.iloc[100:]], ignore_index=True)
    rows, matched = select_gz2(gz2, morph, radius_arcsec=5.0, max_field=20, seed=1)
    assert rows.tolist() == sorted(rows) and len(rows) == 23 and matched.sum() == 3
    assert set(gz2["dr7objid"].iloc[rows[matched]]) == {"7", "8", "9"}  # the shred at 2" is kept too
    again, _ = select_gz2(gz2, morph, radius_arcsec=5.0, max_field=40, seed=1)
    assert set(rows) <= set(again)
    assert len(select_gz2(gz2, morph, radius_arcsec=5.0, max_field=-1, seed=1)[0]) == len(gz2)
    assert len(select_gz2(gz2, morph, radius_arcsec=5.0, max_field=0, seed=1)[0]) == 3


def test_dry_run_size_estimates_are_in_a_plausible_range():
    assert 1e7 < EST_BYTES["cube"] < 2e8 and 5e3 < EST_BYTES["cutout"] < 2e5 and 2e9 < EST_BYTES["galaxy10"] < 4e9


# Live archives: one small object per source (run with --remote-data), each parsed by a helper that the
# offline twin below runs on locally made files of the same format.


def _head_bytes(url: str, n: int) -> bytes:
    """The first `n` bytes of a remote file, asked for with a Range request (nothing else is downloaded)."""
    import requests

    with requests.get(url, headers={"Range": f"bytes=0-{n - 1}"}, stream=True, timeout=60) as r:
        r.raise_for_status()
        return r.raw.read(n)


def _cube_header(prefix: bytes) -> fits.Header:
    """The primary header from the first bytes of a gzipped FITS cube."""
    raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(prefix)
    end = next(i for i in range(0, len(raw), 80) if raw[i:i + 80].rstrip() == b"END")
    return fits.Header.fromstring(raw[:end + 80].decode("ascii"))


def _gz2_rows(prefix: bytes) -> pd.DataFrame:
    """The complete rows among the first bytes of gz2_hart16.csv.gz."""
    text = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(prefix).decode()
    return pd.read_csv(io.StringIO(text.rsplit("\n", 1)[0]), dtype={"dr7objid": str})


def _check_gz2_rows(rows: pd.DataFrame) -> None:
    assert {"dr7objid", "ra", "dec", "gz2_class", *REQUIRED_COLUMNS} <= set(rows.columns)
    assert len(rows) > 0 and rows["dr7objid"].str.fullmatch(r"\d{18}").all()


def test_live_helpers_parse_real_format_files(tmp_path):
    mock = fake.build_mock(tmp_path)
    name = pd.read_csv(mock / LAYOUT["morphology_path"])["name"].iloc[0]
    header = _cube_header((mock / LAYOUT["cube_dir"] / f"{name}{CUBE_SUFFIX}").read_bytes()[:4096])
    assert header["NAXIS"] == 3 and header["NAXIS3"] == 1877 and header["OBJECT"] == name
    _check_gz2_rows(_gz2_rows(gzip.compress((mock / LAYOUT["gz2_catalog_path"]).read_bytes())[:4096]))
    assert (mock / LAYOUT["galaxy10_path"]).read_bytes()[:8] == HDF5_SIGNATURE


@pytest.mark.remote_data
def test_live_ecalifa_table(tmp_path):
    src = RemoteSources()
    got = fetch(src.califa_table_url, tmp_path / "ecalifa_global.csv", name="eCALIFA table",
                expected_sha256=src.califa_table_sha256, policy=RetryPolicy(tries=3))
    assert len(read_califa_table(got.path, "ecalifa")) == 895


@pytest.mark.remote_data
def test_live_dr3_table(tmp_path):
    got = fetch(DR3_TABLE_URL, tmp_path / "dr3.csv", name="DR3 table", expected_sha256=DR3_TABLE_SHA256,
                policy=RetryPolicy(tries=3))
    assert len(read_califa_table(got.path, "dr3")) > 1300


@pytest.mark.remote_data
@pytest.mark.parametrize("template", [RemoteSources().cube_url_template, DR3_CUBE_URL])
def test_live_cube_header(template):
    header = _cube_header(_head_bytes(template.format(name="NGC5947"), 65536))
    assert header["NAXIS"] == 3 and header["NAXIS3"] == 1877 and header["CRVAL3"] == pytest.approx(3749.0)


@pytest.mark.remote_data
def test_live_sdss_cutout(tmp_path):
    got = fetch(RemoteSources().cutout_url(*NGC5947), tmp_path / "NGC5947.jpg", name="SDSS cutout",
                policy=RetryPolicy(tries=3))
    check_image(got.path)


@pytest.mark.remote_data
def test_live_gz2_table_first_rows():
    _check_gz2_rows(_gz2_rows(_head_bytes(RemoteSources().gz2_table_url, 1 << 20)))


@pytest.mark.remote_data
def test_live_galaxy10_is_hdf5():
    assert _head_bytes(GALAXY10_URL, 8) == HDF5_SIGNATURE


@pytest.mark.remote_data
def test_live_manga_drpall_and_logcube_headers():
    """MaNGA DR17: the DRPall file is FITS, and a well-known LOGCUBE (8485-1901) names itself in its header."""
    src = RemoteSources()
    assert _head_bytes(src.manga_drpall_url, 30).startswith(b"SIMPLE  =")
    header = _cube_header(_head_bytes(src.for_manga().cube_url("8485-1901"), 65536))
    assert header["PLATEIFU"] == "8485-1901"
