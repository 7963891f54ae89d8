"""Benchmark (issue 7, #5): crossmatch + labels on a 304,122-row GZ2 catalogue, against astropy's match alone.

Inputs (generated): a gz2_hart16.csv-format table of 304,122 rows with every Hart+16 column (rows drawn
from a pool of sky.votes mock rows, fresh ids and positions over the SDSS Legacy footprint and
Stripe 82) and a CALIFA morphology table of 895 galaxies, most placed within an arcsec of a GZ2 row.
Both are read once with the stages' readers (io.catalogs.read_gz2 / read_morphology); reading is timed
separately, since the stages pay it too. Ours, on the tables in memory: what stages/crossmatch.py does
(catalog.crossmatch CALIFA → GZ2, one-to-one, radius from params, require_matches, match_stats) plus
the per-row label work of stages/labels.py on all rows (catalog.labels.map_catalog: gz2_class → 8
classes; catalog.selection.select_high_confidence: the 5-class subset; catalog.sample.galaxy_of_gz2).
Baseline: astropy alone, the stage's way round: SkyCoord of the 895 CALIFA positions
.match_to_catalog_sky(SkyCoord of the 304,122 GZ2 positions), both SkyCoords built inside the timed
call (astropy caches the catalogue's k-d tree on the SkyCoord). Target ≥ 0.8.
Run from the repository root: `python benchmarks/crossmatch.py [--quick]`.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import tempfile
import time
from pathlib import Path

import astropy.units as u
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import yaml
from astropy.coordinates import SkyCoord
from harness import finish, paired

from specmorph.catalog.crossmatch import crossmatch, match_stats, require_matches
from specmorph.catalog.labels import map_catalog
from specmorph.catalog.sample import galaxy_of_gz2
from specmorph.catalog.selection import REQUIRED_COLUMNS, HighConfidence, select_high_confidence
from specmorph.io.catalogs import read_gz2, read_morphology
from specmorph.params import build
from specmorph.sky.catalogs import dec_string, make_dr7objid, ra_string
from specmorph.sky.population import draw_galaxy
from specmorph.sky.votes import GZ2_COLUMNS, draw_votes
from specmorph.taxonomy import CALIFA_TYPES, CLASSES

NAME = "crossmatch"
REPO = Path(__file__).resolve().parents[1]
FULL = {"n_gz2": 304_122, "repeat": 5}  # rows of the real gz2_hart16.csv
QUICK = {"n_gz2": 20_000, "repeat": 3}
N_CALIFA = 895  # eCALIFA galaxies
POOL = 4000  # distinct mock vote rows
MATCHED_FRACTION = 0.8  # CALIFA galaxies placed at a GZ2 row
SHRED_FRACTION = 0.02  # of those, with a second GZ2 row within 2 arcsec (a duplicate pair)
TARGET = 0.8


def sphere_box(rng: np.random.Generator, n: int, ra: tuple[float, float], dec: tuple[float, float]) -> np.ndarray:
    """(n, 2) deg, uniform on the sphere inside an RA/Dec box."""
    s = rng.uniform(np.sin(np.radians(dec[0])), np.sin(np.radians(dec[1])), n)
    return np.column_stack([rng.uniform(*ra, n) % 360.0, np.degrees(np.arcsin(s))])


def offset(rng: np.random.Generator, radec: np.ndarray, sigma_arcsec: float) -> np.ndarray:
    """Positions moved by a Gaussian offset of sigma_arcsec per axis (deg)."""
    d = rng.normal(0.0, sigma_arcsec / 3600.0, radec.shape)
    out = radec + d / np.column_stack([np.cos(np.radians(radec[:, 1])), np.ones(len(radec))])
    out[:, 0] %= 360.0
    out[:, 1] = np.clip(out[:, 1], -90.0, 90.0)
    return out


def make_inputs(work: Path, n_gz2: int) -> tuple[Path, Path]:
    """Writes gz2_hart16.csv (n_gz2 rows, all Hart+16 columns) and morphology.csv (895 galaxies)."""
    rng = np.random.default_rng(0)
    pool = pd.DataFrame([draw_votes(draw_galaxy(rng, str(i), 180.0, 30.0, None, label_name=CLASSES[i % len(CLASSES)],
                                                field=True), rng) for i in range(POOL)])
    gz2 = pool.iloc[rng.integers(0, POOL, n_gz2)].reset_index(drop=True)
    n_s82 = n_gz2 // 10
    radec = np.vstack([sphere_box(rng, n_gz2 - n_s82, (110.0, 260.0), (-5.0, 70.0)),
                       sphere_box(rng, n_s82, (-50.0, 60.0), (-1.25, 1.25))])
    gz2["dr7objid"] = make_dr7objid(rng, n_gz2)
    gz2["ra"], gz2["dec"] = radec[:, 0], radec[:, 1]
    gz2["sample"] = np.where(np.arange(n_gz2) < n_gz2 - n_s82, "original", "stripe82")
    n_matched = int(MATCHED_FRACTION * N_CALIFA)
    rows = rng.choice(n_gz2, n_matched, replace=False)
    shred = rows[: int(SHRED_FRACTION * n_matched)]
    second = offset(rng, radec[shred], 1.0)  # the shredded entries take the next rows' places
    targets = rng.choice(np.setdiff1d(np.arange(n_gz2), rows), len(shred), replace=False)
    gz2.loc[targets, "ra"], gz2.loc[targets, "dec"] = second[:, 0], second[:, 1]
    gz2["rastring"] = [ra_string(x) for x in gz2["ra"]]
    gz2["decstring"] = [dec_string(x) for x in gz2["dec"]]
    gz2_path = work / "gz2_hart16.csv"
    pacsv.write_csv(pa.Table.from_pandas(gz2[GZ2_COLUMNS], preserve_index=False), gz2_path)
    califa = np.vstack([offset(rng, radec[rows], 0.5),
                        sphere_box(rng, N_CALIFA - n_matched, (110.0, 260.0), (-5.0, 70.0))])
    morph = pd.DataFrame({"name": [f"CALIFA{i:04d}" for i in range(N_CALIFA)], "ra": califa[:, 0],
                          "dec": califa[:, 1], "redshift": rng.uniform(0.005, 0.08, N_CALIFA),
                          "hubtyp": rng.choice(CALIFA_TYPES, N_CALIFA)})
    morph_path = work / "morphology.csv"
    morph.to_csv(morph_path, index=False)
    return gz2_path, morph_path


def median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 GZ2 rows, seconds (smoke run)")
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    radius = float(params["crossmatch"]["radius_arcsec"])
    thresholds = build(HighConfidence, params["labels"]["high_confidence"], "labels.high_confidence")
    with tempfile.TemporaryDirectory(prefix="bench_crossmatch_") as tmp:
        t0 = time.perf_counter()
        gz2_path, morph_path = make_inputs(Path(tmp), size["n_gz2"])
        generate_s = time.perf_counter() - t0
        reads = {
            "read_gz2 as the crossmatch stage (4 columns)": lambda: read_gz2(gz2_path, columns=[]),
            "read_gz2 as the labels stage (4 + 8 vote columns)": lambda: read_gz2(gz2_path,
                                                                                 columns=list(REQUIRED_COLUMNS)),
            "pandas read_csv, all columns": lambda: pd.read_csv(gz2_path),
            "read_morphology": lambda: read_morphology(morph_path),
        }
        read_s = {k: median_seconds(fn, 2 if args.quick else 3) for k, fn in reads.items()}
        csv_mb = gz2_path.stat().st_size / 1e6
        morph = read_morphology(morph_path)
        gz2_cm = read_gz2(gz2_path, columns=[])
        gz2_lab = read_gz2(gz2_path, columns=list(REQUIRED_COLUMNS))
    ra_c, dec_c = morph["ra"].to_numpy(), morph["dec"].to_numpy()
    ra_g, dec_g = gz2_cm["ra"].to_numpy(), gz2_cm["dec"].to_numpy()

    def crossmatch_stage() -> tuple[pd.DataFrame, pd.DataFrame]:
        califa = morph.rename(columns={"id_str": "califa"})
        gz2 = gz2_cm.rename(columns={"id_str": "gz2"})
        matched, duplicates = crossmatch(califa, gz2, radius, left_id="califa", right_id="gz2",
                                         left_name="morphology.csv", right_name="gz2_hart16.csv")
        require_matches(matched, "morphology.csv", "gz2_hart16.csv", radius)
        match_stats(matched, duplicates)
        return matched, duplicates

    matched, duplicates = crossmatch_stage()
    labels_steps = {
        "map_catalog (gz2_class -> 8 classes)": lambda: map_catalog(gz2_lab),
        "select_high_confidence (5-class subset)": lambda: select_high_confidence(gz2_lab, thresholds),
        "galaxy_of_gz2 (CALIFA owner of each row)": lambda: galaxy_of_gz2(gz2_lab, matched, duplicates),
    }

    def ours() -> None:
        m, d = crossmatch_stage()
        map_catalog(gz2_lab)
        select_high_confidence(gz2_lab, thresholds)
        galaxy_of_gz2(gz2_lab, m, d)

    def baseline() -> None:
        califa = SkyCoord(ra_c * u.deg, dec_c * u.deg, frame="icrs")
        gz2 = SkyCoord(ra_g * u.deg, dec_g * u.deg, frame="icrs")
        califa.match_to_catalog_sky(gz2)

    r = paired(ours, baseline, items=len(gz2_cm), repeat=size["repeat"])
    steps = {"crossmatch stage (crossmatch + checks + stats)": crossmatch_stage, **labels_steps}
    step_s = {k: median_seconds(fn, size["repeat"]) for k, fn in steps.items()}
    prof = cProfile.Profile()
    prof.runcall(ours)
    stats = pstats.Stats(prof).stats
    top = sorted(stats.items(), key=lambda kv: -kv[1][2])[:12]
    result = {
        "n_gz2": len(gz2_cm), "n_califa": len(morph), "radius_arcsec": radius, "csv_mb": csv_mb,
        "generate_s": generate_s, "n_matched": len(matched), "n_duplicates": len(duplicates),
        "baseline": "SkyCoord(califa).match_to_catalog_sky(SkyCoord(gz2)), SkyCoords built in the call",
        "ours_s": statistics.median(r["ours"]["wall_s"]), "baseline_s": statistics.median(r["baseline"]["wall_s"]),
        "read_s": read_s, "ours_steps_s": step_s, **r,
        "top_own_time": [{"function": f"{Path(f).name}:{line}:{func}", "own_s": tt, "calls": nc}
                         for (f, line, func), (_, nc, tt, _, _) in top],
    }
    print(f"ours {result['ours_s']:.3f} s, astropy match alone {result['baseline_s']:.3f} s; steps "
          + ", ".join(f"{k}: {v:.3f} s" for k, v in step_s.items()) + "; reads "
          + ", ".join(f"{k}: {v:.2f} s" for k, v in read_s.items()), flush=True)
    finish(NAME + (".quick" if args.quick else ""), result, r["ratio"], TARGET)


if __name__ == "__main__":
    main()
