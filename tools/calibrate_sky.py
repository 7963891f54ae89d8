"""Summarises the real CALIFA / SDSS reference data into the mock survey's calibration JSON.

Run by hand when the reference data change; the JSON is committed, so the data are not needed at run time:
    python tools/calibrate_sky.py --shared-dir ../shared/data --out src/specmorph/sky/calibration.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from astropy.io import fits
from PIL import Image

try:
    from specmorph.io.atomic import atomic_file
    from specmorph.realism.spectra import read_ecalifa
    from specmorph.taxonomy import CALIFA_TYPES
except ImportError:  # a clone without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from specmorph.io.atomic import atomic_file
    from specmorph.realism.spectra import read_ecalifa
    from specmorph.taxonomy import CALIFA_TYPES

MIN_N = 15  # types with fewer galaxies are pooled with neighbouring types
FAMILIES = (range(0, 8), range(8, 10), range(10, 18), range(18, 20))  # E, S0/S0a, Sa-Sdm, I/BCD
NSA_COLS = {0: "ID", 66: "sersic_n", 67: "ba", 78: "d4000"}  # 0-based; header is 1-based
BAR_CODES = {0: "A", 1: "AB", 2: "B"}
HEADER_KEYS = (  # instrument and pipeline constants; PPAK P1 = first of the 3 dithered pointings
    "OBJDESC", "AUTHOR", "INTRUME", "PIPE VERS", "PIPE UNITS", "PIPE GALEXT COR", "WCSNAME", "RADESYS",
    "PPAK P1 IFU_TYPE", "PPAK P1 NFIBERS", "PPAK P1 GRAT_ID", "PPAK P1 PIPE SPEC RES", "PPAK P1 EXPTIME",
    "PPAK P1 CCD_TYPE", "PPAK P1 CAHA TEL GEOLAT", "PPAK P1 CAHA TEL GEOLON", "PPAK P1 CAHA TEL GEOELEV")
BORDER_PX = 20  # width of the JPEG border taken as sky
CENTRE_PX = 10  # half-width of the JPEG centre box


def sig(x: float, digits: int | None = None) -> float | None:
    """Rounds to `digits` significant digits (default 3 below 1, else 4); None for non-finite values."""
    if not np.isfinite(x):
        return None
    digits = digits or (3 if abs(x) < 1 else 4)
    return float(f"{x:.{digits}g}")


def quantiles(values) -> list | None:
    """Returns [p16, p50, p84] of the finite values, or None when there are fewer than 3."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return [sig(q) for q in np.percentile(v, [16, 50, 84])] if v.size >= 3 else None


def read_nsa(path: Path) -> pd.DataFrame:
    """Reads Sersic n, b/a and D4000 from the Pipe3D-NSA table ('#'-commented column list)."""
    d = pd.read_csv(path, comment="#", header=None, usecols=list(NSA_COLS)).rename(columns=NSA_COLS)
    d["d4000"] = d["d4000"].where(d["d4000"] > 0)  # 0 = no SDSS fibre spectrum
    d["ba"] = d["ba"].where((d["ba"] > 0) & (d["ba"] <= 1))
    d["sersic_n"] = d["sersic_n"].where(d["sersic_n"] > 0)
    return d.dropna(subset=["ba", "sersic_n", "d4000"], how="all")


def read_morph(path: Path) -> pd.DataFrame:
    """Reads the CALIFA DR3 morphology table (no header line; see PROVENANCE.md)."""
    names = ["ID", "REALNAME", "DBName", "RA", "DE", "hubtyp", "bar", "merg"]
    d = pd.read_csv(path, comment="#", header=None, names=names, skipinitialspace=True)
    d = d[d["hubtyp"].between(0, len(CALIFA_TYPES) - 1)].copy()  # -1 = unknown
    d["type"] = [CALIFA_TYPES[int(h)] for h in d["hubtyp"]]
    d["bar"] = d["bar"].map(BAR_CODES)  # -1 / blank -> NaN
    return d


def pool_for(i: int, counts: dict[str, int]) -> list[str]:
    """Returns the types pooled with type i: a symmetric window within its family until n >= MIN_N."""
    family = next(f for f in FAMILIES if i in f)
    for width in range(len(family)):
        group = [j for j in family if abs(j - i) <= width]
        if sum(counts.get(CALIFA_TYPES[j], 0) for j in group) >= MIN_N:
            break
    return [CALIFA_TYPES[j] for j in group] if len(group) > 1 else []


def per_type(ecal: pd.DataFrame, nsa: pd.DataFrame, morph: pd.DataFrame) -> dict:
    """Quantiles of every calibrated quantity per CALIFA type."""
    id_type = ecal.drop_duplicates("ID").set_index("ID")["type"]
    fallback = morph.drop_duplicates("ID").set_index("ID")["type"]
    nsa = nsa.assign(type=nsa["ID"].map(id_type).fillna(nsa["ID"].map(fallback)))
    counts = ecal["type"].value_counts().to_dict()
    cols = {"z": "z", "abs_mag_r": "r_band_abs_mag", "g_r": "g-r", "re_arcsec": "Re", "re_kpc": "Re_kpc",
            "log_mass": "log_Mass", "log_sfr_ha": "log_SFR_Ha", "ew_ha_re": "ew_ha_re", "log_nii_ha":
            "log_NII_Ha_Re", "log_oiii_hb": "log_OIII_Hb_Re", "age_lw_gyr": "age_lw_gyr",
            "sigma_kms": "sigma_kms", "av": "Av_ssp_Re", "av_gas": "Av_gas_Re"}
    out = {}
    for i, name in enumerate(CALIFA_TYPES):
        pooled = pool_for(i, counts)
        group = pooled or [name]
        e, n = ecal[ecal["type"].isin(group)], nsa[nsa["type"].isin(group)]
        m = morph[morph["type"].isin(group)]
        entry = {"n": int(counts.get(name, 0)), "pooled_with": pooled}
        entry.update({key: quantiles(e[col]) for key, col in cols.items()})
        entry.update({key: quantiles(n[key]) for key in ("sersic_n", "ba", "d4000")})
        entry["n_nsa"], entry["n_d4000"] = int(n["ba"].notna().sum()), int(n["d4000"].notna().sum())
        bars = m["bar"].dropna()
        entry["bar"] = {k: sig(float((bars == k).mean()), 3) for k in ("A", "AB", "B")}
        entry["n_bar"] = int(bars.size)
        out[name] = entry
    return out


# Quantities drawn together from one real galaxy of the type (population.joint_draw): the mock keeps
# eCALIFA's correlations and tails, not only its per-type quantiles.
JOINT_COLUMNS = {"g_r": "g-r", "age_lw_gyr": "age_lw_gyr", "ew_ha_re": "ew_ha_re", "log_nii_ha": "log_NII_Ha_Re",
                 "log_oiii_hb": "log_OIII_Hb_Re", "sigma_kms": "sigma_kms", "av": "Av_ssp_Re"}


def joint_rows(ecal: pd.DataFrame) -> dict:
    """Per CALIFA type, the JOINT_COLUMNS of each of its eCALIFA galaxies (null where not measured)."""
    rows = {}
    for name in CALIFA_TYPES:
        e = ecal[ecal["type"] == name].sort_values("ID", kind="stable")  # ties (repeated IDs) keep table order
        rows[name] = [[sig(float(v)) for v in r] for r in e[list(JOINT_COLUMNS.values())].to_numpy(float)]
    return {"columns": list(JOINT_COLUMNS), "rows": rows}


def slope_per_re(r_re: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y against radius in units of Re, over 0.5-2 Re."""
    ok = np.isfinite(y) & (r_re >= 0.5) & (r_re <= 2.0)
    return float(np.polyfit(r_re[ok], y[ok], 1)[0])


def kinematics(h5_path: Path, ecal: pd.DataFrame, nsa: pd.DataFrame, name: str = "NGC4047") -> dict:
    """Rotation amplitude and radial gradients of one real Pipe3D cube."""
    row = ecal[ecal["Name"] == name].iloc[0]
    with h5py.File(h5_path, "r") as f:
        el, fl, ssp = f["ELINES"][:], f["flux_elines"][:], f["SSP"][:]
    r = el["rad_arc"].astype(float)  # arcsec, deprojected with the LEDA geometry
    phi = np.radians(el["azi_ang"].astype(float))  # in-plane azimuth
    vel = el["Havel"].astype(float)  # km/s
    good = np.isfinite(vel) & (el["Halpha"] > 3 * el["e_Halpha"])
    ba_nsa = float(nsa.loc[nsa["ID"] == row["ID"], "ba"].iloc[0])
    ba_ecal = float(np.sqrt(1 - row["ellip"] ** 2))  # ecalifa `ellip` behaves as an eccentricity
    q0 = 0.2  # intrinsic disc thickness
    sin_i = {k: np.sqrt(1 - (b**2 - q0**2) / (1 - q0**2)) for k, b in (("nsa", ba_nsa), ("ecalifa", ba_ecal))}
    edges = np.arange(0.5, 3.01, 0.25) * row["Re"]
    profile = []
    for lo, hi in itertools.pairwise(edges):
        sel = good & (r >= lo) & (r < hi)
        if sel.sum() < 20:
            continue
        design = np.column_stack([np.ones(sel.sum()), np.cos(phi[sel]), np.sin(phi[sel])])
        coef = np.linalg.lstsq(design, vel[sel], rcond=None)[0]
        profile.append((0.5 * (lo + hi) / row["Re"], float(np.hypot(coef[1], coef[2]))))
    r_re, v_proj = np.array(profile).T
    outer = v_proj[r_re >= 1.0]
    ew = fl["EW_Halpha"].astype(float)
    log_ew = np.log10(np.where(ew < 0, -ew, np.nan))  # emission EW, Å
    r_ssp = ssp["rad_arc"].astype(float) / row["Re"]
    bins = np.arange(0.0, 3.01, 0.5)
    idx = np.digitize(r_ssp, bins) - 1
    log_age = ssp["age_lwt"].astype(float)
    return {
        "galaxy": name,
        "vrot_kms": quantiles(outer / sin_i["nsa"]),
        "vrot_proj_kms": quantiles(outer),
        "vrot_ecalifa_incl_kms": sig(float(np.median(outer / sin_i["ecalifa"]))),
        "inclination_deg": {k: sig(float(np.degrees(np.arcsin(s))), 3) for k, s in sin_i.items()},
        "rotation_curve": {"r_re": [sig(x, 3) for x in r_re], "v_proj_kms": [sig(v, 3) for v in v_proj]},
        "ha_ew_gradient": sig(slope_per_re(r / row["Re"], log_ew)),
        "age_gradient_dex_per_re": sig(slope_per_re(r_ssp, log_age)),
        "radial_profile": {
            "r_re": [sig(0.5 * (a + b), 3) for a, b in itertools.pairwise(bins)],
            "log_age_lw_yr": [sig(float(np.nanmedian(log_age[idx == k]))) for k in range(bins.size - 1)],
            "ew_ha_aa": [sig(float(np.nanmedian(-ew[idx == k]))) for k in range(bins.size - 1)],
        },
        "vsys_kms": sig(float(np.nanmedian(vel[good]))),
        "note": "Havel (Halpha S/N>3) fitted per deprojected annulus (rad_arc, azi_ang: LEDA geometry) "
        "as vsys + a cos(phi) + b sin(phi); hypot(a, b) over 1-3 Re / sin(i) from NSA SERSIC_BA, q0=0.2. "
        "Gradients: d log10(EW Halpha emission / A) and d log10(age_LW / yr) per Re, least squares over "
        "0.5-2 Re. The age profile is U-shaped (old bulge, youngest near 1 Re where EW peaks).",
    }


def sdss_jpeg(jpg_dir: Path) -> dict:
    """Sky level, sky noise, centre colour and saturation of real SDSS cutouts."""
    border, noise, clipped, sat, centres = [], [], [], [], {"spiral": [], "non_spiral": []}
    for path in sorted(jpg_dir.glob("*.jpg")):
        img = np.asarray(Image.open(path).convert("RGB"), dtype=float)  # (H, W, 3)
        mask = np.ones(img.shape[:2], bool)
        mask[BORDER_PX:-BORDER_PX, BORDER_PX:-BORDER_PX] = False
        pix = img[mask]  # (N, 3)
        border.append(pix)
        dev = np.abs(pix - np.median(pix, axis=0))
        noise.append(1.4826 * np.median(dev, axis=0))
        clipped.append([pix[dev[:, c] <= 5 * max(noise[-1][c], 1.0), c].std() for c in range(3)])
        cy, cx = img.shape[0] // 2, img.shape[1] // 2
        box = img[cy - CENTRE_PX : cy + CENTRE_PX, cx - CENTRE_PX : cx + CENTRE_PX].reshape(-1, 3)
        kind = "non_spiral" if path.name.startswith("non_spiral") else "spiral"
        centres[kind].append(np.median(box, axis=0))
        sat.append(float((img >= 255).any(axis=2).mean()))
    return {
        "n_images": len(sat),
        "size_px": list(img.shape[:2]),
        "sky_rgb_median": [sig(v, 3) for v in np.median(np.concatenate(border), axis=0)],
        "sky_rgb_noise": [sig(v, 3) for v in np.median(noise, axis=0)],
        "sky_rgb_std_clipped": [sig(v, 3) for v in np.median(clipped, axis=0)],
        "galaxy_centre_rgb": {k: [sig(v, 3) for v in np.median(c, axis=0)] for k, c in centres.items()},
        "saturated_frac": sig(float(np.mean(sat)), 3),
        "note": f"sky = outer {BORDER_PX} px, median pooled over images; noise = per-image MAD*1.4826 "
        "(quantised: integer pixels) or std within 5 MAD, median over images; centre = median of the "
        f"central {2 * CENTRE_PX} px box, median over images; saturated = any channel at 255.",
    }


def califa_products(spec_dir: Path) -> tuple[dict, dict, dict]:
    """Header keywords and spectrum summary of the NGC5947 V500 products, and its Halpha map."""
    with fits.open(spec_dir / "integ_3D.fits") as hdul:
        hdr, flux = hdul[0].header, hdul[0].data.astype(float)  # 1e-16 erg/s/cm²/Å
    header = {k: hdr[k] for k in HEADER_KEYS if k in hdr}
    pointings = sorted({m.group(1) for k in hdr if (m := re.match(r"PPAK (P\d) ", k))})
    wave = hdr["CRVAL1"] + hdr["CDELT1"] * (np.arange(flux.size) + 1 - hdr["CRPIX1"])  # Å
    windows = {f"{lo}-{lo + 100}": sig(float(np.median(flux[(wave >= lo) & (wave < lo + 100)])), 3)
               for lo in (4000, 4500, 5000, 5500, 6000, 6500, 7000)}
    spectrum = {
        "integ_3D_median_flux": sig(float(np.median(flux))),
        "flux_p1_p99": [sig(v) for v in np.percentile(flux, [1, 99])],
        "median_flux_windows": windows,
        "bunit": hdr["PIPE UNITS"],
        "crval1": hdr["CRVAL1"], "cdelt1": hdr["CDELT1"], "naxis1": int(flux.size),
        "spec_res_fwhm_aa": hdr.get("PPAK P1 PIPE SPEC RES"),
        "note": "integrated V500 spectrum of NGC5947 (sum of all spaxels), unit from PIPE UNITS; its "
        "CUNIT1='deg' is wrong (axis in Angstrom). Windows: median flux per 100 A.",
    }
    ha = fits.getdata(spec_dir / "NGC5947_flux_Ha.fits").astype(float)  # (72, 78)
    values, n_same = np.unique(ha[np.isfinite(ha)], return_counts=True)
    fill = float(values[np.argmax(n_same)])  # the constant written outside the hexagon
    outside = (ha == fill) | (ha == 0)
    flux_map = {
        "shape": list(ha.shape),
        "nan_frac": sig(float(np.isnan(ha).mean()), 3),
        "fill_value": sig(fill, 3),
        "outside_footprint_frac": sig(float(outside.mean()), 3),
        "p50_p99_inside": [sig(v, 3) for v in np.percentile(ha[~outside], [50, 99])],
        "n_pointings": len(pointings),
        "note": "Halpha map of NGC5947 (1e-16 erg/s/cm2 per spaxel): no NaN; outside the hexagonal footprint "
        "it holds one constant fill value, plus a few exact zeros; outside_footprint_frac counts both.",
    }
    return header, spectrum, flux_map


def calibrate(shared_dir: Path) -> dict:
    """Builds the full calibration dictionary from the reference data in `shared_dir`."""
    califa = shared_dir / "califa"
    ecal = read_ecalifa(califa / "ecalifa_global.csv")
    nsa = read_nsa(califa / "Pipe3D_NSA_CALIFA-DR3_candidates.csv")
    morph = read_morph(califa / "CALIFA_3_joint_classnum_new_update.csv")
    counts = ecal["type"].value_counts()
    header, spectrum, flux_map = califa_products(shared_dir / "califa_spectrum")
    return {
        "provenance": f"Written by tools/calibrate_sky.py. califa/ecalifa_global.csv ({len(ecal)} galaxies; "
        "U dropped, QC warnings kept): z, r_band_abs_mag, g-r, Re, Re_kpc, log_Mass, log_SFR_Ha, EW_Ha_Re "
        "(sign flipped, emission positive), log_NII_Ha_Re, log_OIII_Hb_Re, Age_LW_Re_fit (dex yr -> Gyr), "
        "vel_disp_ssp_cen (0 = no fit; vel_sigma_Re is dimensionless), Av_ssp_Re (av), Av_gas_Re (av_gas). "
        "califa/Pipe3D_NSA_CALIFA-DR3_candidates.csv columns 67/68/79 (SERSIC_N, SERSIC_BA, D4000; 0 = none) "
        "joined on CALIFA ID, type from eCALIFA else the DR3 morphology table. Bars (A/AB/B; -1, blank "
        "dropped) from califa/CALIFA_3_joint_classnum_new_update.csv, hubtyp = taxonomy.CALIFA_TYPES index. "
        f"Per type [p16, p50, p84] of finite values; types with n<{MIN_N} pooled with neighbours of the same "
        "family (pooled_with). joint: per type, each galaxy's g-r, age, EW(Ha), [NII]/Ha, [OIII]/Hb, sigma "
        "and Av (sorted by ID), drawn together by the mock. Kinematics: NGC4047 Pipe3D HDF5; sdss_jpeg: "
        "sdss_examples/*.jpg; header, flux map and spectrum: califa_spectrum/.",
        "type_mix": {t: sig(float(counts.get(t, 0) / counts.sum())) for t in CALIFA_TYPES},
        "per_type": per_type(ecal, nsa, morph),
        "joint": joint_rows(ecal),
        "kinematics": kinematics(califa / "NGC4047_allpix.pipe3d.hdf5", ecal, nsa),
        "sdss_jpeg": sdss_jpeg(shared_dir / "sdss_examples"),
        "califa_header": header,
        "califa_flux_map": flux_map,
        "spectrum": spectrum,
    }


def to_json(obj: dict) -> str:
    """Indented JSON with each innermost list or dict kept on one line."""
    text = json.dumps(obj, indent=1, ensure_ascii=False)
    flat = re.compile(r"([\[{])\s+([^\[\]{}]*?)\s+([\]}])")  # innermost list / dict
    return flat.sub(lambda m: m.group(1) + re.sub(r"\n\s*", " ", m.group(2)) + m.group(3), text) + "\n"


def main() -> None:
    """Parses arguments, calibrates and writes the JSON atomically."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-dir", type=Path, required=True, help="the reference data folder")
    parser.add_argument("--out", type=Path, required=True, help="calibration JSON to write")
    args = parser.parse_args()
    text = to_json(calibrate(args.shared_dir))
    with atomic_file(args.out) as tmp_path:
        tmp_path.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text.encode())} bytes)")


if __name__ == "__main__":
    main()
