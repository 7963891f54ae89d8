"""Draws mock galaxies (GalaxyTruth) whose types, sizes, colours and gas follow the real eCALIFA sample."""

from __future__ import annotations

import json
import math
from functools import cache, lru_cache
from importlib import resources

import numpy as np

from specmorph.sky.truth import GalaxyTruth
from specmorph.taxonomy import CALIFA_TYPES, CLASS_INDEX, CLASSES, GALAXY10_CLASSES

C_KMS = 299_792.458  # km/s
H0 = 70.0  # km/s/Mpc, flat ΛCDM with Ωm = 0.3 (low-z approximation below)

# Bulge-to-total light per CALIFA type: median and spread (r band). E: a pure spheroid.
# Values follow the trend of bulge/disc decompositions of CALIFA (Méndez-Abreu et al. 2017).
_BT = {"S0": (0.55, 0.12), "S0a": (0.45, 0.12), "Sa": (0.35, 0.10), "Sab": (0.28, 0.08),
       "Sb": (0.20, 0.07), "Sbc": (0.14, 0.05), "Sc": (0.08, 0.04), "Scd": (0.05, 0.03),
       "Sd": (0.02, 0.02), "Sdm": (0.01, 0.01), "I": (0.0, 0.0), "BCD": (0.0, 0.0)}
# Which CALIFA types a galaxy of each 8-class label can have, with weights (used when the label
# is drawn first, as for Galaxy10 and for the field galaxies of GZ2).
_TYPES_OF_LABEL = {
    "round_smooth": {"E0": 4, "E1": 4, "E2": 3, "S0": 1, "BCD": 1},
    "in_between_smooth": {"E3": 3, "E4": 3, "E5": 2, "S0": 3, "S0a": 1},
    "cigar_smooth": {"E6": 3, "E7": 2},
    "edge_on_with_bulge": {"S0": 2, "S0a": 2, "Sa": 3, "Sab": 2, "Sb": 3, "Sbc": 2},
    "edge_on_without_bulge": {"Sc": 2, "Scd": 3, "Sd": 3, "Sdm": 2},
    "barred_spiral": {"S0a": 1, "Sa": 2, "Sab": 2, "Sb": 3, "Sbc": 3, "Sc": 2, "Scd": 1, "Sd": 1},
    "unbarred_tight_spiral": {"Sa": 3, "Sab": 3, "Sb": 3, "Sbc": 2},
    "unbarred_loose_spiral": {"Sc": 3, "Scd": 3, "Sd": 2, "Sdm": 2, "I": 1},
}
_EDGE_ON_DEG = 80.0  # inclination above which a disc is seen edge-on
# mag of g-r per dex of 1/cos(i): edge-on discs ~0.15 mag redder than face-on ones (cf. Maller et al.
# 2009; the real dev set's edge-on galaxies are ~0.13 mag redder in the JPEGs than its face-on spirals).
_INCLINATION_REDDENING = 0.25
# Ranges of the quantities drawn together from one real galaxy (`joint_draw`): a value outside (a
# failed fit) or missing is drawn alone from the type's quantiles instead. σ keeps eCALIFA's tails (18% of
# its spirals below 30 km/s, 10% above 350): cut to 30-350, the mock's σ of spirals was at KS 0.18 from them.
_JOINT_RANGES = {"g_r": (0.1, 1.1), "age_lw_gyr": (0.3, 13.0), "ew_ha_re": (0.0, 300.0), "log_nii_ha": (-1.5, 0.6),
                 "log_oiii_hb": (-1.5, 1.2), "sigma_kms": (5.0, 450.0), "av": (0.0, 2.5)}
# Scatter added to a drawn galaxy's values, about the real measurements' errors, so that no two mock
# galaxies share a value (several hundred real galaxies seed thousands of mock ones): (std, in log).
_JOINT_JITTER = {"g_r": (0.02, False), "age_lw_gyr": (0.1, True), "ew_ha_re": (0.1, True), "log_nii_ha": (0.05, False),
                 "log_oiii_hb": (0.05, False), "sigma_kms": (0.1, True), "av": (0.05, False)}
_DISC_Q0 = 0.2  # intrinsic thickness of discs (Hubble's q0; SDSS discs: ~0.2, Padilla & Strauss 2008)
_MU50_LIMIT = 23.0  # mag/arcsec², mean r-band surface brightness within r50
_CALIFA_MAG_LIMIT = 16.0  # r mag: faintest CALIFA-like galaxy
_CALIFA_RE_RANGE = (7.0, 25.0)  # arcsec, effective radii of the diameter-selected CALIFA sample


@lru_cache(maxsize=1)
def calibration() -> dict:
    """Returns the committed calibration summary (`sky/calibration.json`) of the real sample."""
    text = resources.files("specmorph.sky").joinpath("calibration.json").read_text()
    return json.loads(text)


@cache
def _joint_pool(hubtyp: str) -> tuple[tuple[str, ...], tuple[tuple, ...]]:
    """Column names and the real galaxies' rows for a type, over its pool (`pooled_with`) when it is rare."""
    cal = calibration()
    pool = cal["per_type"][hubtyp]["pooled_with"] or [hubtyp]
    rows = tuple(tuple(r) for name in pool for r in cal["joint"]["rows"][name])
    return tuple(cal["joint"]["columns"]), rows


def joint_draw(rng: np.random.Generator, hubtyp: str, deck: dict[str, list[int]] | None = None
               ) -> tuple[dict[str, float], tuple[str, ...]]:
    """Colour and spectral quantities of one real eCALIFA galaxy of the type, drawn at random.

    Drawing them together keeps the real sample's correlations (a bluer galaxy has a higher EW(Hα)
    and a younger age) and its tails; drawn one by one from per-type quantiles, the mock's spectra
    separated the types more cleanly than the real ones. Each value gets the scatter _JOINT_JITTER;
    values missing or outside _JOINT_RANGES are left out (the caller draws them alone).

    With a `deck` (one dict per sample, filled here), the type's real galaxies are dealt in a shuffled
    order and each is copied once before any is copied twice. Drawn with replacement, a sample of a few
    hundred galaxies holds near-copies of one real galaxy, and a classifier that meets one copy in
    training and another in testing tells the types apart from their spectra better than it can on the
    real sample (E / S0 / S balanced accuracy 0.65 on the mock against 0.55 on eCALIFA).

    Returns:
        {column: value} for the usable columns of the drawn galaxy (`calibration.json` "joint"), and the
        columns it has no value for at all (Pipe3D measured none; a value outside the ranges is not one).
    """
    columns, rows = _joint_pool(hubtyp)
    if deck is None:
        row = rows[int(rng.integers(len(rows)))]
    else:
        left = deck.setdefault(hubtyp, [])
        if not left:
            left.extend(rng.permutation(len(rows)).tolist())
        row = rows[left.pop()]
    noise = rng.standard_normal(len(columns))
    out = {}
    for c, v, z in zip(columns, row, noise, strict=True):
        if v is None or not _JOINT_RANGES[c][0] <= v <= _JOINT_RANGES[c][1]:
            continue
        std, log = _JOINT_JITTER[c]
        out[c] = float(np.clip(v * math.exp(std * z) if log else v + std * z, *_JOINT_RANGES[c]))
    return out, tuple(c for c, v in zip(columns, row, strict=True) if v is None)


def split_normal(rng: np.random.Generator, q: list[float], lo: float = -np.inf,
                 hi: float = np.inf) -> float:
    """Draws from a split normal with the 16/50/84th percentiles `q`, clipped to [lo, hi]."""
    p16, p50, p84 = q
    z = rng.standard_normal()
    x = p50 + z * ((p50 - p16) if z < 0 else (p84 - p50))
    return float(np.clip(x, lo, hi))


def arcsec_per_kpc(z: float) -> float:
    """Angular scale at redshift `z` (flat ΛCDM, Ωm=0.3, H0=70; 2nd-order low-z expansion)."""
    q0 = 0.3 / 2 - 0.7  # deceleration parameter
    d_c = C_KMS * z / H0 * (1 - (1 + q0) * z / 2)  # Mpc, comoving distance
    d_a = d_c / (1 + z)  # Mpc
    return 206.265 / d_a  # arcsec per kpc


def distance_modulus(z: float) -> float:
    """Distance modulus (mag) at redshift `z` for the same cosmology, with luminosity distance."""
    q0 = 0.3 / 2 - 0.7
    d_l = C_KMS * z / H0 * (1 + (1 - q0) * z / 2)  # Mpc
    return 5 * math.log10(d_l * 1e6 / 10)


def label_of(hubtyp: str, inclination: float, barred: bool, q_apparent: float) -> int:
    """The 8-class truth implied by a CALIFA type seen at an inclination, with or without a bar."""
    if hubtyp.startswith("E") or hubtyp == "BCD":
        name = ("round_smooth" if q_apparent >= 0.8
                else "in_between_smooth" if q_apparent >= 0.45 else "cigar_smooth")
    elif inclination >= _EDGE_ON_DEG:
        early = CALIFA_TYPES.index(hubtyp) <= CALIFA_TYPES.index("Sbc")
        name = "edge_on_with_bulge" if early else "edge_on_without_bulge"
    elif barred:
        name = "barred_spiral"
    elif hubtyp == "S0":
        name = "round_smooth" if q_apparent >= 0.8 else "in_between_smooth"
    elif CALIFA_TYPES.index(hubtyp) <= CALIFA_TYPES.index("Sbc"):
        name = "unbarred_tight_spiral"
    else:
        name = "unbarred_loose_spiral"
    return CLASS_INDEX[name]


def _inclination_for(label_name: str | None, rng: np.random.Generator) -> float:
    """Inclination (deg): isotropic, or constrained so the label's look (edge-on or not) holds."""
    if label_name in ("edge_on_with_bulge", "edge_on_without_bulge"):
        return float(rng.uniform(_EDGE_ON_DEG + 2, 90.0))
    lo, hi = {None: (0.0, 1.0), "round_smooth": (0.85, 1.0), "in_between_smooth": (0.5, 0.77)}.get(
        label_name, (math.cos(math.radians(_EDGE_ON_DEG - 8)), 1.0))
    cos_i = rng.uniform(lo, hi)
    return math.degrees(math.acos(cos_i))


def draw_galaxy(rng: np.random.Generator, id_str: str, ra: float, dec: float, redshift: float | None,
                hubtyp: str | None = None, label_name: str | None = None, galaxy10: int | None = None,
                field: bool = False, deck: dict[str, list[int]] | None = None) -> GalaxyTruth:
    """Draws one galaxy, from its CALIFA type (CALIFA sample) or from its 8-class label (GZ2, Galaxy10).

    Args:
        rng: Random generator; the only source of randomness.
        id_str: Name or object id.
        ra: Right ascension, deg.
        dec: Declination, deg.
        redshift: Redshift; None draws the CALIFA distribution of the type (or a field one).
        hubtyp: CALIFA type; drawn from the label when None.
        label_name: 8-class label; None derives it from type, inclination and bar.
        galaxy10: Galaxy10 code; 0/1 mark a disturbed/merging galaxy (rendered as such).
        field: A GZ2/Galaxy10 field galaxy: magnitude-limited redshift (r < 17) instead of CALIFA's.
        deck: Deals the real galaxies the colours and spectra are copied from (`joint_draw`); the cube
            samples pass one, so that no real galaxy is copied twice before each is copied once.

    Returns:
        The galaxy's truth.
    """
    cal = calibration()
    if hubtyp is None:
        choices = _TYPES_OF_LABEL[label_name]
        names = list(choices)
        w = np.array([choices[n] for n in names], float)
        hubtyp = names[rng.choice(len(names), p=w / w.sum())]
    t = cal["per_type"][hubtyp]
    elliptical = hubtyp.startswith("E")
    abs_mag = split_normal(rng, t["abs_mag_r"], -24.0, -15.0)
    if field:
        abs_mag -= 0.7  # Malmquist bias: a magnitude-limited sample over-represents luminous galaxies
    if redshift is None and field:
        # Magnitude-limited (r < 17): uniform in volume out to where the galaxy reaches the limit.
        z_max = min(0.25, 10 ** ((17.0 - abs_mag - 25) / 5) * H0 / C_KMS)
        redshift = float(np.clip(z_max * rng.uniform() ** (1 / 3), 0.01, 0.25))
    elif redshift is None:
        redshift = split_normal(rng, t["z"], 0.005, 0.08)
    if not field and abs_mag + distance_modulus(redshift) > _CALIFA_MAG_LIMIT:
        # CALIFA is diameter-selected from bright SDSS galaxies: move a too faint draw closer.
        redshift = max(0.005, redshift * 10 ** ((_CALIFA_MAG_LIMIT - abs_mag - distance_modulus(redshift)) / 5))
    mag_r = abs_mag + distance_modulus(redshift)
    re_kpc = split_normal(rng, t["re_kpc"], 0.3, 30.0)
    # Surveys see galaxies above a surface-brightness limit: mean μ_r within r50 ≤ 23 mag/arcsec².
    # μ50 = M + 5 log10(r50 / kpc) + 38.57 (distance-free, no cosmological dimming).
    re_kpc = min(re_kpc, 10 ** ((_MU50_LIMIT - abs_mag - 38.57) / 5))
    re = re_kpc * arcsec_per_kpc(redshift)  # arcsec
    if not field:
        re = float(np.clip(re, *_CALIFA_RE_RANGE))  # isophotal diameters 45-80" (Walcher et al. 2014)
    joint, unmeasured = joint_draw(rng, hubtyp, deck)
    g_r = joint.get("g_r", split_normal(rng, t["g_r"], 0.1, 1.1))
    pa = float(rng.uniform(0, 180))

    barred = False
    if elliptical or hubtyp == "BCD":
        inclination = 0.0
        q_fixed = None
        if label_name == "cigar_smooth":
            q_fixed = rng.uniform(0.22, 0.42)
        elif label_name == "in_between_smooth":
            q_fixed = rng.uniform(0.5, 0.77)
        elif label_name == "round_smooth":
            q_fixed = rng.uniform(0.83, 1.0)
        ell = int(hubtyp[1]) / 10 if elliptical else 0.1  # E4 means ellipticity 0.4
        q = q_fixed if q_fixed is not None else float(np.clip(1 - ell - rng.uniform(0, 0.1), 0.2, 1))
        bulge_frac, bulge_q, disc_q, disc_h = 1.0, q, q, 0.0
        bulge_n = split_normal(rng, t["sersic_n"], 2.0 if elliptical else 1.0, 6.0)
        bulge_re = re
    else:
        inclination = _inclination_for(label_name, rng)
        bar = t["bar"]
        p_bar = bar["B"] + 0.5 * bar["AB"]
        if label_name is not None:
            barred = label_name == "barred_spiral"
        else:
            barred = rng.uniform() < p_bar and inclination < _EDGE_ON_DEG
        mu, sd = _BT.get(hubtyp, (0.1, 0.05))
        bulge_frac = float(np.clip(rng.normal(mu, sd), 0.0, 0.8))
        if label_name == "edge_on_without_bulge":
            bulge_frac = min(bulge_frac, 0.03)
        elif label_name == "edge_on_with_bulge":
            bulge_frac = max(bulge_frac, 0.15)
        disc_q = math.sqrt(math.cos(math.radians(inclination)) ** 2 * (1 - _DISC_Q0**2) + _DISC_Q0**2)
        bulge_q = float(np.clip(rng.uniform(0.7, 0.95), disc_q, 1.0))
        bulge_n = float(np.clip(rng.normal(2.0 + 2.0 * bulge_frac, 0.5), 0.8, 4.5))
        disc_h = re / 1.678 * (1 + 0.5 * bulge_frac)
        bulge_re = max(0.15 * re * (1 + bulge_frac), 0.6)
        q = disc_q

    if label_name is None:
        label = label_of(hubtyp, inclination, barred, q)
    else:
        label = CLASS_INDEX[label_name]
    late = 0.0 if elliptical else (CALIFA_TYPES.index(hubtyp) - 8) / 11  # 0 for S0, 1 for BCD
    spiral = not elliptical and hubtyp not in ("S0", "BCD")
    n_arms = 0
    pitch = 0.0
    arm_strength = 0.0
    if spiral and label_name not in ("round_smooth", "in_between_smooth"):
        n_arms = int(rng.choice([1, 2, 3, 4, 5], p=[0.05, 0.6, 0.17, 0.06, 0.12]))  # 5 = many (+)
        # deg: early types wind tightly (Sa ~10°), late types loosely (Sc-Sd ~25°); Kennicutt 1981.
        loose = label_name == "unbarred_loose_spiral" or (
            label_name != "unbarred_tight_spiral" and CALIFA_TYPES.index(hubtyp) > CALIFA_TYPES.index("Sbc"))
        pitch = float(np.clip(rng.normal(26, 5), 21, 40) if loose else np.clip(rng.normal(10.5, 2.5), 5, 15))
        arm_strength = float(np.clip(rng.normal(0.45, 0.12), 0.15, 0.8))
        if hubtyp == "I":
            arm_strength *= 0.3

    # Old spheroids sit on the SDSS red sequence (g-r ≈ 0.77; Strateva et al. 2001). eCALIFA's own
    # g-r of ellipticals (median 0.61) is bluer than the SDSS photometry the cutouts mimic.
    bulge_gr = split_normal(rng, [0.72, 0.77, 0.82], 0.6, 0.95)
    if elliptical:
        disc_gr = bulge_gr
    else:
        disc_gr = float(np.clip((g_r - bulge_frac * bulge_gr) / max(1 - bulge_frac, 1e-3), 0.15, 0.75))
        # Inclined discs are redder (dust along a longer path): E(g-r) grows with log(1/cos i).
        disc_gr += _INCLINATION_REDDENING * math.log10(1 / max(math.cos(math.radians(inclination)), 0.1))
    age = joint.get("age_lw_gyr", split_normal(rng, t["age_lw_gyr"], 0.3, 13.0))
    ew_ha = joint.get("ew_ha_re", split_normal(rng, t["ew_ha_re"], 0.0, 300.0))
    av = joint.get("av", split_normal(rng, t["av"], 0.0, 2.5))
    dust_lane = 0.0
    if inclination >= _EDGE_ON_DEG:
        av = min(3.0, av * 2.5 + 0.3)
        dust_lane = float(np.clip(rng.normal(0.75 - 0.4 * late, 0.1), 0.05, 0.95))
    log_mass = split_normal(rng, t["log_mass"], 8.0, 12.0)
    # Late types keep eCALIFA's central σ too, although below the V500 resolution it is poorly measured:
    # replaced by a cold value scaled with v_rot, it told late spirals from S0s better than real cubes can.
    sigma = joint.get("sigma_kms", split_normal(rng, t["sigma_kms"], *_JOINT_RANGES["sigma_kms"]))
    v_rot = 0.0 if elliptical else 10 ** (2.25 + 0.27 * (log_mass - 10.0)) * rng.normal(1, 0.08)
    # The bulge is old; the disc's age is set so that the two, weighted in log by the bulge's share of the
    # light, give the galaxy's light-weighted age (what Pipe3D measures within Re).
    age_bulge = age if elliptical else max(age * 1.3, 6.0)
    age_disc = age if elliptical else float(np.clip(
        10 ** ((math.log10(age) - bulge_frac * math.log10(age_bulge)) / max(1 - bulge_frac, 0.05)), 0.1, age))
    return GalaxyTruth(
        id_str=id_str, ra=ra, dec=dec, redshift=round(redshift, 6), label=label,
        galaxy10=GALAXY10_CLASSES.index(CLASSES[label]) if galaxy10 is None else galaxy10,
        hubtyp=hubtyp, mag_r=mag_r, bulge_frac=bulge_frac, bulge_n=bulge_n, bulge_re=bulge_re,
        bulge_q=bulge_q, disc_h=disc_h, disc_q=disc_q, inclination=inclination, pa=pa,
        bar_strength=float(rng.uniform(0.12, 0.3)) if barred else 0.0,
        bar_length=float(rng.uniform(0.6, 1.2) * disc_h * (1.4 - 0.6 * late)) if barred else 0.0,
        n_arms=n_arms, pitch=pitch, arm_strength=arm_strength, dust_lane=dust_lane,
        bulge_gr=bulge_gr, disc_gr=disc_gr, age_bulge=age_bulge, age_disc=age_disc, ew_ha=ew_ha,
        log_nii_ha=joint.get("log_nii_ha", split_normal(rng, t["log_nii_ha"], -1.5, 0.6)),
        log_oiii_hb=joint.get("log_oiii_hb", split_normal(rng, t["log_oiii_hb"], -1.5, 1.2)), av=av,
        v_rot=float(v_rot), sigma=sigma, unmeasured=";".join(unmeasured),
    )

