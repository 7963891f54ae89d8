"""Tests for the spectral comparison: type groups, the eCALIFA reader's conventions, separability with known answers."""

import math

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from specmorph.errors import InputError
from specmorph.realism.spectra import (
    ECALIFA_COLUMNS,
    EW_FLOOR,
    FOLDS,
    QUANTITIES,
    generator_separability,
    group_of,
    mock_quantities,
    read_ecalifa,
    separability,
    spectra_section,
)


def test_group_of_maps_hubble_types_to_e_s0_s():
    types = pd.Series(["E0", "E7", "S0", "S0a", "Sb", "Sdm", "I", "BCD", "U", None])
    assert group_of(types).tolist() == ["E", "E", "S0", "S", "S", "S", "", "", "", ""]


def _ecsv(path, **drop):
    rows = {"Name": ["A", "B", "C"], "type": ["E1", "Sb", "U"], "g-r": [0.7, 0.5, 0.6],
            "EW_Ha_Re": [-0.3, -12.0, -1.0], "log_NII_Ha_Re": [-0.2, -0.4, -0.3],
            "Age_LW_Re_fit": [9.5, 9.0, 9.2], "vel_disp_ssp_cen": [210.0, 0.0, 90.0]}
    Table({k: v for k, v in rows.items() if k not in drop}).write(path, format="ascii.ecsv", overwrite=True)
    return path


def test_read_ecalifa_makes_the_conventions_explicit(tmp_path):
    """Pipe3D writes emission EW negative, ages in dex(yr) and 0 for a failed dispersion fit; U is unknown."""
    t = read_ecalifa(_ecsv(tmp_path / "t.csv"))
    assert t["Name"].tolist() == ["A", "B"]
    assert t["ew_ha_re"].tolist() == [0.3, 12.0]
    assert t["age_lw_gyr"].tolist() == pytest.approx([10**0.5, 1.0])
    assert t["sigma_kms"].iloc[0] == 210.0 and math.isnan(t["sigma_kms"].iloc[1])
    with pytest.raises(InputError, match="log_NII_Ha_Re missing"):
        read_ecalifa(_ecsv(tmp_path / "u.csv", log_NII_Ha_Re=1))
    (tmp_path / "v.csv").write_text("not a table\n")
    with pytest.raises(InputError, match="not a readable eCALIFA ECSV"):
        read_ecalifa(tmp_path / "v.csv")
    assert "EW_Ha_Re" in ECALIFA_COLUMNS


def test_mock_quantities_weigh_bulge_and_disc_ages_by_light():
    truth = pd.DataFrame({"hubtyp": ["Sb", "E3", "Irr"], "bulge_frac": [0.25, 1.0, 0.0], "age_bulge": [8.0, 5.0, 1.0],
                          "age_disc": [1.0, 5.0, 1.0], "ew_ha": [20.0, 0.0, 50.0], "log_nii_ha": [-0.4, -0.2, -0.9],
                          "sigma": [120.0, 250.0, 40.0], "unmeasured": [np.nan, "", "sigma_kms"]})
    q = mock_quantities(truth)
    assert q["coarse"].tolist() == ["S", "E"]  # "Irr" is not a CALIFA type: left out
    assert q["log_age_lw"].tolist() == pytest.approx([0.25 * math.log10(8.0), math.log10(5.0)])
    assert q["log_ew_ha"].tolist() == pytest.approx([math.log10(20.0), math.log10(EW_FLOOR)])
    assert q["sigma_kms"].tolist() == [120.0, 250.0]


def test_mock_quantities_leave_out_what_the_copied_real_galaxy_lacked():
    """A quantity unmeasured because the real galaxy had no Pipe3D value is NaN, as in the real table."""
    truth = pd.DataFrame({"hubtyp": ["E1", "S0", "Sc"], "bulge_frac": [1.0, 0.5, 0.1], "age_bulge": [9.0, 8.0, 6.0],
                          "age_disc": [9.0, 4.0, 1.0], "ew_ha": [0.3, 1.0, 20.0], "log_nii_ha": [-0.1, -0.2, -0.5],
                          "sigma": [220.0, 180.0, 60.0],
                          "unmeasured": ["log_nii_ha;log_oiii_hb", "sigma_kms;ew_ha_re;age_lw_gyr", np.nan]})
    q = mock_quantities(truth)
    assert q["log_nii_ha"].isna().tolist() == [True, False, False]
    assert q["sigma_kms"].isna().tolist() == [False, True, False]
    assert q["log_ew_ha"].isna().tolist() == [False, True, False]
    assert q["log_age_lw"].isna().tolist() == [False, True, False]


def test_separability_is_one_for_disjoint_groups_and_chance_for_identical_ones():
    rng = np.random.default_rng(0)
    n = 60
    base = pd.DataFrame(rng.normal(size=(2 * n, len(QUANTITIES))), columns=list(QUANTITIES))
    base["coarse"] = ["E"] * n + ["S"] * n
    apart = base.copy()
    apart.loc[apart["coarse"] == "S", "log_ew_ha"] += 50.0
    assert separability(apart, ("E", "S"), [0, 1])["mean"] == 1.0
    same = separability(base, ("E", "S"), [0, 1, 2])
    assert abs(same["mean"] - 0.5) < 0.15 and same["counts"] == {"E": n, "S": n} and len(same["per_seed"]) == 3
    few = separability(base.iloc[: n + FOLDS - 1], ("E", "S"), [0])
    assert few["mean"] is None and few["counts"]["S"] == FOLDS - 1


def test_spectra_section_skips_without_truth_or_table(tmp_path):
    assert spectra_section(tmp_path, tmp_path / "t.csv", [0], tmp_path / "p") == {
        "skipped": f"no mock truth at {tmp_path / 'califa.csv'}"}
    (tmp_path / "califa.csv").write_text("hubtyp\n")
    assert spectra_section(tmp_path, tmp_path / "t.csv", [0], tmp_path / "p") == {
        "skipped": f"no real table at {tmp_path / 't.csv'}"}


def test_generator_separability_scores_fresh_samples_of_the_given_size():
    a = generator_separability(300, draws=2, seed=5)
    assert set(a) == {"E/S", "E/S0/S"}
    for task, v in a.items():
        assert v["n"] == 300 and v["draws"] == 2 and len(v["per_draw"]) == 2
        assert 1 / len(task.split("/")) < v["mean"] <= 1.0  # the mock's types are told apart better than chance
    assert generator_separability(300, draws=2, seed=5) == a  # seeded
    assert generator_separability(300, draws=2, seed=6)["E/S"]["per_draw"] != a["E/S"]["per_draw"]
    tiny = generator_separability(8, draws=1)  # too few of each group for the folds
    assert tiny["E/S0/S"]["mean"] is None and tiny["E/S0/S"]["per_draw"] == []
