"""Spectral quantities of the mock CALIFA galaxies against the real eCALIFA table: distributions, separability.

The mock builds each galaxy's cube from a few quantities (Hα equivalent width, [NII]/Hα, the ages of
its bulge and disc populations, the stellar velocity dispersion); the real eCALIFA table lists the same
quantities as Pipe3D measured them. Both are grouped by Hubble type (E, S0, S) and compared as
distributions (KS) and by how well a random forest on them separates the groups: if the mock's
spectra separated E from S0 from S more cleanly than real ones, every "spectra help" figure of the
pipeline would overstate what real cubes can add.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from specmorph.evaluation.metrics import classification_metrics
from specmorph.evaluation.report import aggregate_seeds
from specmorph.io.catalogs import read_ecsv, read_table
from specmorph.realism.compare import compare, write_histograms
from specmorph.sky.samples import califa_sample
from specmorph.taxonomy import CALIFA_TYPES

GROUPS = ("E", "S0", "S")  # E0-E7; S0; S0a-Sdm (Irr and BCD left out)
QUANTITIES = ("log_ew_ha", "log_nii_ha", "log_age_lw", "sigma_kms")
# The calibration "joint" column (`sky.population.joint_draw`) each quantity of a mock galaxy was copied from.
JOINT_COLUMN = {"log_ew_ha": "ew_ha_re", "log_nii_ha": "log_nii_ha", "log_age_lw": "age_lw_gyr",
                "sigma_kms": "sigma_kms"}
TASKS = {"E/S": ("E", "S"), "E/S0/S": ("E", "S0", "S")}
EW_FLOOR = 0.1  # Å: EW(Hα) below (retired galaxies, absorption) is set to it before the log
FOLDS = 5
N_TREES = 200
# Fresh mock samples of the run's size whose separability is averaged: one sample of ~400 galaxies (29 S0)
# varies by ±0.03-0.05 from draw to draw, as much as the ±0.05 the target allows.
GENERATOR_DRAWS = 10
GENERATOR_SEED = 1013  # the draws' own seed, apart from the survey's
# eCALIFA columns read (Pipe3D within Re, and the central stellar dispersion; Sánchez et al. 2016, 2022).
ECALIFA_COLUMNS = ("Name", "type", "g-r", "EW_Ha_Re", "log_NII_Ha_Re", "Age_LW_Re_fit", "vel_disp_ssp_cen")


def read_ecalifa(path: str | Path) -> pd.DataFrame:
    """Reads the eCALIFA global table (ECSV) with its sign conventions and sentinels made explicit.

    Rows of unknown type ('U') are dropped. Added columns: `ew_ha_re` (Å, emission positive; Pipe3D
    writes it negative), `age_lw_gyr` (from dex yr), `sigma_kms` (NaN where the fit failed: 0).

    Raises:
        InputError: not a readable ECSV table, or a column of ECALIFA_COLUMNS missing (named).
    """
    t = read_ecsv(path, ECALIFA_COLUMNS, "eCALIFA ECSV table").to_pandas()
    t = t[t["type"].isin(CALIFA_TYPES)].copy()
    t["ew_ha_re"] = -t["EW_Ha_Re"]
    t["age_lw_gyr"] = 10 ** (t["Age_LW_Re_fit"] - 9.0)
    t["sigma_kms"] = t["vel_disp_ssp_cen"].where(t["vel_disp_ssp_cen"] > 0)
    return t


def group_of(hubtyp: pd.Series) -> np.ndarray:
    """(N,) GROUPS name of each CALIFA type, "" for Irr / BCD / unknown."""
    index = {t: i for i, t in enumerate(CALIFA_TYPES)}
    s0, sdm = index["S0"], index["Sdm"]
    codes = hubtyp.map(index).fillna(-1).to_numpy(int)
    return np.select([(codes >= 0) & (codes < s0), codes == s0, (codes > s0) & (codes <= sdm)], list(GROUPS), "")


def _table(group: np.ndarray, ew: np.ndarray, nii: np.ndarray, age_gyr: np.ndarray, sigma: np.ndarray
           ) -> pd.DataFrame:
    out = pd.DataFrame({"coarse": group, "log_ew_ha": np.log10(np.maximum(ew, EW_FLOOR)), "log_nii_ha": nii,
                        "log_age_lw": np.log10(age_gyr), "sigma_kms": sigma})
    return out[out["coarse"] != ""].reset_index(drop=True)


def real_quantities(ecalifa: pd.DataFrame) -> pd.DataFrame:
    """QUANTITIES and `coarse` (group) of the real galaxies (`read_ecalifa`); NaN where Pipe3D has none."""
    return _table(group_of(ecalifa["type"]), ecalifa["ew_ha_re"].to_numpy(float),
                  ecalifa["log_NII_Ha_Re"].to_numpy(float), ecalifa["age_lw_gyr"].to_numpy(float),
                  ecalifa["sigma_kms"].to_numpy(float))


def mock_quantities(truth: pd.DataFrame) -> pd.DataFrame:
    """QUANTITIES and `coarse` of the mock galaxies, from the truth table the cubes were built from.

    The light-weighted age is the bulge's and the disc's ages averaged in log with the r-band bulge
    fraction as weight (the cube mixes the two populations by light); the other quantities are the
    ones the cube's lines and broadening were made with. A quantity the copied real galaxy had no
    Pipe3D value for (truth `unmeasured`) is NaN, as it is in the real table: the mock draws one so that
    it can render the cube, but counting it would keep in the mock the galaxies (mostly ellipticals with
    too little gas for [NII]/Hα) that the real comparison leaves out.
    """
    bt = truth["bulge_frac"].to_numpy(float)
    log_age = bt * np.log10(truth["age_bulge"].to_numpy(float)) + (1 - bt) * np.log10(
        truth["age_disc"].to_numpy(float))
    group = group_of(truth["hubtyp"])
    out = _table(group, truth["ew_ha"].to_numpy(float), truth["log_nii_ha"].to_numpy(float), 10**log_age,
                 truth["sigma"].to_numpy(float))  # the rows of a group, in order
    lacks = truth["unmeasured"].fillna("").astype(str).str.split(";")[group != ""]
    for quantity, column in JOINT_COLUMN.items():
        out.loc[[column in names for names in lacks], quantity] = np.nan
    return out


def separability(df: pd.DataFrame, groups: Sequence[str], seeds: Sequence[int]) -> dict[str, Any]:
    """Balanced accuracy of a random forest telling `groups` apart from QUANTITIES, cross-validated.

    Rows with a missing quantity are dropped. Per seed: FOLDS stratified shuffled folds, N_TREES trees
    with balanced class weights, out-of-fold predictions scored together.

    Returns:
        `aggregate_seeds`' {"mean", "std", "min", "max"} over the seeds plus "per_seed", "n" (rows) and
        "counts": {group: rows}; mean None when a group has fewer than FOLDS rows.
    """
    d = df[df["coarse"].isin(groups)].dropna(subset=list(QUANTITIES))
    counts = {g: int((d["coarse"] == g).sum()) for g in groups}
    if min(counts.values()) < FOLDS:
        return {"mean": None, "std": None, "per_seed": [], "n": len(d), "counts": counts}
    x, y = d[list(QUANTITIES)].to_numpy(float), d["coarse"].to_numpy(str)
    scores = []
    for seed in seeds:
        rf = RandomForestClassifier(N_TREES, class_weight="balanced", random_state=seed, n_jobs=1)
        pred = cross_val_predict(rf, x, y, cv=StratifiedKFold(FOLDS, shuffle=True, random_state=seed))
        scores.append(classification_metrics(y, pred, list(groups))["macro_recall"])  # = balanced accuracy
    summary = aggregate_seeds([{"balanced_accuracy": s} for s in scores])["balanced_accuracy"]
    return {**summary, "per_seed": scores, "n": len(d), "counts": counts}


def generator_separability(n: int, draws: int = GENERATOR_DRAWS, seed: int = GENERATOR_SEED) -> dict[str, Any]:
    """Separability (per TASKS) of `draws` fresh mock cube samples of `n` galaxies each: the generator's, not a draw's.

    Each draw is `sky.samples.califa_sample` (the type mix and spectra every cube sample gets) under its own
    seeded generator, scored by `separability` with one fold seed.

    Returns:
        {task: `aggregate_seeds`' {"mean", "std", "min", "max"} over the draws plus "per_draw", "n", "draws"}.
    """
    scores: dict[str, list[float]] = {task: [] for task in TASKS}
    for k in range(draws):
        sample = califa_sample(np.random.default_rng([seed, k]), n)
        q = mock_quantities(pd.DataFrame([g.to_row() for g in sample]))
        for task, groups in TASKS.items():
            score = separability(q, groups, [k])["mean"]
            if score is not None:
                scores[task].append(score)
    return {task: {**aggregate_seeds([{"balanced_accuracy": s} for s in v])["balanced_accuracy"], "per_draw": v,
                   "n": n, "draws": draws} if v else {"mean": None, "std": None, "per_draw": [], "n": n, "draws": draws}
            for task, v in scores.items()}


def spectra_section(truth_dir: str | Path, califa_table: str | Path, seeds: Sequence[int], plot_dir: str | Path
                    ) -> dict[str, Any]:
    """The realism report's spectral part, with its histograms `<plot_dir>/<quantity>.png` (mock vs real).

    Returns {"skipped": reason} when the mock truth (`<truth_dir>/califa.csv`; absent for real
    data/raw) or the eCALIFA table is missing, else `spectral_report` plus where both came from, and per
    task the separability of fresh samples of the same size (`generator_separability`: "mock_generator",
    and its "generator_difference" from the real one).
    """
    truth_path = Path(truth_dir) / "califa.csv"
    for path, what in ((truth_path, "no mock truth"), (Path(califa_table), "no real table")):
        if not path.is_file():
            return {"skipped": f"{what} at {path}"}
    truth = read_table(truth_path, ["hubtyp", "bulge_frac", "age_bulge", "age_disc", "ew_ha", "log_nii_ha", "sigma",
                                    "unmeasured"])
    mock, real = mock_quantities(truth), real_quantities(read_ecalifa(califa_table))
    write_histograms({"eCALIFA": (mock, real, GROUPS)}, plot_dir, QUANTITIES)
    report = spectral_report(mock, real, seeds)
    for task, fresh in generator_separability(len(truth)).items():
        sep = report["separability"][task]
        real_mean = sep["real"]["mean"]
        sep["mock_generator"] = fresh
        sep["generator_difference"] = (fresh["mean"] - real_mean if fresh["mean"] is not None
                                       and real_mean is not None else None)
    return {"mock": str(truth_path), "real": str(califa_table), **report}


def spectral_report(mock: pd.DataFrame, real: pd.DataFrame, seeds: Sequence[int]) -> dict[str, Any]:
    """Distributions (KS per group and quantity) and separability (per task) of mock against real.

    Returns:
        {"quantities": `compare` output over GROUPS and QUANTITIES, "separability": {task: {"mock",
        "real", "difference" (mock - real mean)}}}.
    """
    sep: dict[str, Mapping[str, Any]] = {}
    for task, groups in TASKS.items():
        m, r = separability(mock, groups, seeds), separability(real, groups, seeds)
        diff = m["mean"] - r["mean"] if m["mean"] is not None and r["mean"] is not None else None
        sep[task] = {"mock": m, "real": r, "difference": diff}
    return {"quantities": compare(mock, real, GROUPS, QUANTITIES), "separability": sep}
