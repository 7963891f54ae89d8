"""Checks the committed mock-survey calibration JSON: schema, invariants and reproducibility."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from specmorph.taxonomy import CALIFA_TYPES

ROOT = Path(__file__).parents[2]
CALIBRATION_PATH = ROOT / "src" / "specmorph" / "sky" / "calibration.json"
SHARED_DIR = ROOT.parent / "shared" / "data"
QUANTILE_KEYS = (
    "z", "abs_mag_r", "g_r", "re_arcsec", "re_kpc", "log_mass", "log_sfr_ha", "ew_ha_re", "log_nii_ha",
    "log_oiii_hb", "age_lw_gyr", "sigma_kms", "av", "sersic_n", "ba", "d4000",
)


@pytest.fixture(scope="module")
def calibration() -> dict:
    return json.loads(CALIBRATION_PATH.read_text(encoding="utf-8"))


def test_top_level_schema(calibration):
    for key in ("provenance", "type_mix", "per_type", "kinematics", "sdss_jpeg", "califa_header", "spectrum"):
        assert key in calibration, key
    assert set(calibration["type_mix"]) == set(CALIFA_TYPES)
    assert set(calibration["per_type"]) == set(CALIFA_TYPES)
    assert sum(calibration["type_mix"].values()) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("hubtyp", CALIFA_TYPES)
def test_per_type_quantiles_ordered(calibration, hubtyp):
    entry = calibration["per_type"][hubtyp]
    assert entry["n"] >= 1
    assert entry["pooled_with"] == [] or hubtyp in entry["pooled_with"]
    for key in QUANTILE_KEYS:
        p16, p50, p84 = entry[key]
        assert p16 <= p50 <= p84, (hubtyp, key)
    assert 0 < entry["ba"][0] and entry["ba"][2] <= 1
    assert 0 < entry["z"][0] and entry["z"][2] < 0.1
    assert entry["ew_ha_re"][0] >= 0  # emission positive
    assert sum(entry["bar"].values()) == pytest.approx(1.0, abs=1e-2)


def test_physically_plausible_trends(calibration):
    per_type = calibration["per_type"]
    ell, sc = per_type["E4"], per_type["Sc"]
    assert ell["ew_ha_re"][1] < sc["ew_ha_re"][1]
    assert ell["d4000"][1] > sc["d4000"][1]
    assert ell["sersic_n"][1] > sc["sersic_n"][1]
    assert ell["sigma_kms"][1] > sc["sigma_kms"][1]
    assert ell["g_r"][1] > sc["g_r"][1]
    assert ell["ba"][1] > sc["ba"][1]  # discs are seen at all inclinations
    assert per_type["Sb"]["bar"]["B"] > per_type["E4"]["bar"]["B"]
    assert per_type["E0"]["ba"][1] > per_type["E7"]["ba"][0]


def test_kinematics_and_images(calibration):
    kin, jpeg = calibration["kinematics"], calibration["sdss_jpeg"]
    assert 100 < kin["vrot_kms"][1] < 400
    assert len(jpeg["sky_rgb_median"]) == len(jpeg["sky_rgb_noise"]) == 3
    assert all(0 <= v < 60 for v in jpeg["sky_rgb_median"])
    assert 0 <= jpeg["saturated_frac"] < 0.05
    assert calibration["califa_header"]["PIPE UNITS"] == calibration["spectrum"]["bunit"]
    assert calibration["spectrum"]["integ_3D_median_flux"] > 0


@pytest.mark.skipif(not SHARED_DIR.is_dir(), reason="real reference data (../shared/data) not present")
def test_calibration_reproduces_committed_file(tmp_path):
    out_path = tmp_path / "calibration.json"
    cmd = [sys.executable, str(ROOT / "tools" / "calibrate_sky.py"), "--shared-dir", str(SHARED_DIR),
           "--out", str(out_path)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    assert json.loads(out_path.read_text(encoding="utf-8")) == json.loads(
        CALIBRATION_PATH.read_text(encoding="utf-8")
    )
