"""Galaxy Zoo 2 volunteer votes of a mock galaxy, in the columns of the Hart et al. (2016) catalogue."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from specmorph.sky.truth import GalaxyTruth
from specmorph.taxonomy import CLASSES

# The GZ2 decision tree: task -> answer column stems, exactly as in the real tables (Willett et al.
# 2013 Table 5 header; gz2_hart16.csv uses the same names).
TASKS: dict[str, tuple[str, ...]] = {
    "t01": ("t01_smooth_or_features_a01_smooth", "t01_smooth_or_features_a02_features_or_disk",
            "t01_smooth_or_features_a03_star_or_artifact"),
    "t02": ("t02_edgeon_a04_yes", "t02_edgeon_a05_no"),
    "t03": ("t03_bar_a06_bar", "t03_bar_a07_no_bar"),
    "t04": ("t04_spiral_a08_spiral", "t04_spiral_a09_no_spiral"),
    "t05": ("t05_bulge_prominence_a10_no_bulge", "t05_bulge_prominence_a11_just_noticeable",
            "t05_bulge_prominence_a12_obvious", "t05_bulge_prominence_a13_dominant"),
    "t06": ("t06_odd_a14_yes", "t06_odd_a15_no"),
    "t07": ("t07_rounded_a16_completely_round", "t07_rounded_a17_in_between", "t07_rounded_a18_cigar_shaped"),
    "t08": ("t08_odd_feature_a19_ring", "t08_odd_feature_a20_lens_or_arc", "t08_odd_feature_a21_disturbed",
            "t08_odd_feature_a22_irregular", "t08_odd_feature_a23_other", "t08_odd_feature_a24_merger",
            "t08_odd_feature_a38_dust_lane"),
    "t09": ("t09_bulge_shape_a25_rounded", "t09_bulge_shape_a26_boxy", "t09_bulge_shape_a27_no_bulge"),
    "t10": ("t10_arms_winding_a28_tight", "t10_arms_winding_a29_medium", "t10_arms_winding_a30_loose"),
    "t11": ("t11_arms_number_a31_1", "t11_arms_number_a32_2", "t11_arms_number_a33_3", "t11_arms_number_a34_4",
            "t11_arms_number_a36_more_than_4", "t11_arms_number_a37_cant_tell"),
}
ANSWERS: list[str] = [a for answers in TASKS.values() for a in answers]
# Per-answer columns of gz2_hart16.csv, in its order (as in Willett et al. 2013 Table 5).
SUFFIXES: tuple[str, ...] = ("count", "weight", "fraction", "weighted_fraction", "debiased", "flag")
ANSWER_COLUMNS: list[str] = [f"{a}_{s}" for a in ANSWERS for s in SUFFIXES]
GZ2_COLUMNS: list[str] = ["dr7objid", "ra", "dec", "rastring", "decstring", "sample", "gz2_class",
                          "total_classifications", "total_votes", *ANSWER_COLUMNS]
# Which answer's voters are asked each task (None: everyone); t06 goes to all who did not answer
# star/artifact (the smooth and features branches both end there).
PARENT: dict[str, tuple[str, int] | None] = {
    "t01": None, "t02": ("t01", 1), "t03": ("t02", 1), "t04": ("t02", 1), "t05": ("t02", 1), "t06": None,
    "t07": ("t01", 0), "t08": ("t06", 0), "t09": ("t02", 0), "t10": ("t04", 0), "t11": ("t04", 0),
}
_BULGE_LETTER = "dcba"  # t05 answers no_bulge, just_noticeable, obvious, dominant
_LETTERS = {"t07": "ric", "t09": "rbn", "t10": "tml", "t11": "1234+?", "t08": "rldiomu"}

KAPPA = 100.0  # Dirichlet concentration of one galaxy's volunteer vote fractions
JITTER_SD = 0.4  # logit, per-galaxy ambiguity of each answer probability
WRONG_RATE = 0.04  # galaxies whose volunteers confidently misread one feature
PSF_FWHM = 1.5  # arcsec, median SDSS r-band seeing
Z_FADE = 0.25  # e-folding redshift of feature visibility (surface-brightness dimming)
CLARITY_BETA = (3.0, 1.0)  # per-image clarity (seeing, depth, neighbours): Beta(a, b), times sqrt(visibility)
CLARITY_MIN = 0.45  # even a poor image conveys this much of the truth
FLAG_MIN_VOTES = 10  # a clean-sample flag needs at least this many votes on the task (W13-like)
SMOOTH_FAMILY = frozenset({"round_smooth", "in_between_smooth", "cigar_smooth"})
EDGE_FAMILY = frozenset({"edge_on_with_bulge", "edge_on_without_bulge"})


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def visibility(truth: GalaxyTruth) -> float:
    """Fraction of a galaxy's features that survive distance: resolution × surface-brightness dimming.

    GZ2 volunteers see fewer features in small, distant galaxies (the redshift bias that the Hart
    et al. 2016 debiasing corrects). Returns a factor in (0, 1]; ~0.95 for CALIFA, ~0.5 at z = 0.15.
    """
    size = 1.678 * truth.disc_h if truth.disc_h > 0 else truth.bulge_re  # arcsec, half-light radius
    resolution = size / math.hypot(size, PSF_FWHM)
    return max(math.exp(-truth.redshift / Z_FADE) * resolution, 0.05)


def _jitter(p: float, rng: np.random.Generator) -> float:
    """`p` moved by a per-galaxy ambiguity (JITTER_SD in logit units)."""
    p = min(max(p, 0.02), 0.98)
    return _sigmoid(math.log(p / (1 - p)) + rng.normal(0.0, JITTER_SD))


def _apparent_q(t: GalaxyTruth) -> float:
    return t.disc_q if t.disc_h > 0 else t.bulge_q


def _latent(t: GalaxyTruth, label: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The probability that a volunteer gives each answer, as seen at perfect visibility."""
    disc = t.disc_h > 0
    if label in SMOOTH_FAMILY:
        feat = 0.08 + (0.25 * (1 - t.bulge_frac) if disc else 0.0)
    elif label in EDGE_FAMILY:
        feat = 0.93
    else:
        feat = 0.70 + 0.45 * t.arm_strength + 0.5 * t.bar_strength - 0.4 * max(t.bulge_frac - 0.3, 0.0)
    feat = _jitter(feat, rng)
    edge = {"cigar_smooth": 0.5, "in_between_smooth": 0.15, "round_smooth": 0.05}.get(label)
    if edge is None:
        edge = 0.05 + 0.8 * _sigmoid((t.inclination - 78.0) / 5.0)
    bar = 0.08 + 0.88 * min(t.bar_strength / 0.15, 1.0)
    spiral = min(0.4 + 1.0 * t.arm_strength, 0.95) if t.n_arms > 0 else 0.1
    odd = 0.1 + 0.3 * t.dust_lane + (0.25 if t.hubtyp == "I" else 0.0) + (0.75 if t.galaxy10 <= 1 else 0.0)
    binary = {k: _jitter(p, rng) for k, p in (("t02", edge), ("t03", bar), ("t04", spiral), ("t06", min(odd, 0.95)))}
    q = _apparent_q(t) + rng.normal(0.0, 0.03)
    rnd, cig = _sigmoid((q - 0.79) / 0.07), _sigmoid((0.46 - q) / 0.07)
    centres = np.array([0.0, 0.1, 0.3, 0.6])  # B/T typical of no / just noticeable / obvious / dominant bulge
    bulge = np.exp(-0.5 * ((t.bulge_frac - centres) / 0.09) ** 2) + 0.02
    no_bulge = _sigmoid((0.06 - t.bulge_frac) / 0.025)
    pitch = t.pitch + rng.normal(0.0, 1.5)  # deg
    tight, loose = _sigmoid((11.0 - pitch) / 2.5), _sigmoid((pitch - 18.0) / 1.5)
    arms = np.full(6, 0.03)
    clarity = min(t.arm_strength / 0.45, 1.0)
    if 1 <= t.n_arms <= 5:
        k = t.n_arms - 1
        arms[k] += 0.6 * clarity
        arms[max(k - 1, 0)] += 0.1
        arms[min(k + 1, 4)] += 0.1
    arms[5] += 0.15 + 0.4 * (1 - clarity)
    odd_kind = np.array([0.2 + 0.5 * t.bar_strength, 0.1, 0.15, 0.15, 0.25, 0.1, 0.05])
    odd_kind += np.array([0, 0, 2.0 * (t.galaxy10 == 0), 1.0 * (t.hubtyp == "I"), 0, 2.0 * (t.galaxy10 == 1),
                          3.0 * t.dust_lane])
    lat = {
        "t01": np.array([(1 - feat) * 0.985, feat * 0.985, 0.015]),
        **{k: np.array([p, 1 - p]) for k, p in binary.items()},
        "t05": bulge, "t07": np.array([rnd, max(1 - rnd - cig, 0.02), cig]),
        "t08": odd_kind, "t09": np.array([0.8 * (1 - no_bulge), 0.2 * (1 - no_bulge), no_bulge]),
        "t10": np.array([tight, max(1 - tight - loose, 0.05), loose]), "t11": arms,
    }
    return {k: v / v.sum() for k, v in lat.items()}


# What volunteers answer when they cannot make a feature out; tasks not listed spread evenly over
# their answers (which blurs the consensus without changing its plurality).
_CONFUSED: dict[str, tuple[float, ...]] = {
    "t01": (0.49, 0.49, 0.02), "t05": (0.25, 0.35, 0.3, 0.1), "t06": (0.15, 0.85), "t08": (1, 1, 1, 1, 2, 1, 0.3),
    "t11": (0.05, 0.25, 0.1, 0.05, 0.05, 0.5),
}


def _misread(t: GalaxyTruth, label: str, rng: np.random.Generator) -> tuple[GalaxyTruth, str]:
    """A galaxy as volunteers wrongly agree to see it: one feature confidently misjudged."""
    if label == "barred_spiral":
        return replace(t, bar_strength=0.0), ("unbarred_loose_spiral" if t.pitch > 19 else "unbarred_tight_spiral")
    if label == "unbarred_tight_spiral":
        if rng.uniform() < 0.5:
            return replace(t, bar_strength=0.2), "barred_spiral"
        return replace(t, pitch=26.0), "unbarred_loose_spiral"
    if label == "unbarred_loose_spiral":
        return replace(t, pitch=9.0), "unbarred_tight_spiral"
    if label == "edge_on_with_bulge":
        return replace(t, bulge_frac=0.0), "edge_on_without_bulge"
    if label == "edge_on_without_bulge":
        return replace(t, bulge_frac=0.3), "edge_on_with_bulge"
    q = 0.62 if label in ("round_smooth", "cigar_smooth") else float(rng.choice([0.92, 0.35]))
    new = "in_between_smooth" if q == 0.62 else "round_smooth" if q > 0.8 else "cigar_smooth"
    return replace(t, bulge_q=q, disc_q=q), new


def _dirmult(rng: np.random.Generator, n: int, p: np.ndarray) -> np.ndarray:
    """Dirichlet-multinomial vote counts of `n` volunteers around answer probabilities `p`."""
    if n == 0:
        return np.zeros(len(p), dtype=np.int64)
    return rng.multinomial(n, rng.dirichlet(KAPPA * p + 1e-3))


def _plurality(fractions: dict[str, float], task: str) -> int:
    return int(np.argmax([fractions.get(a, 0.0) for a in TASKS[task]]))


def gz2_class_from_fractions(fractions: dict[str, float]) -> str:
    """The GZ2 class string (`gz2_class`) from the plurality path through the decision tree.

    Args:
        fractions: Vote fraction per answer stem (e.g. `t01_smooth_or_features_a01_smooth`); missing
            answers count as 0.

    Returns:
        E.g. 'Er', 'Ec(m)', 'Seb', 'Sen', 'Sb', 'SBc2m', 'Sc+t(r)', 'Sd?l' or 'A'.
    """
    top = _plurality(fractions, "t01")
    if top == 2:
        return "A"
    if top == 0:
        cls = "E" + _LETTERS["t07"][_plurality(fractions, "t07")]
    elif _plurality(fractions, "t02") == 0:
        cls = "Se" + _LETTERS["t09"][_plurality(fractions, "t09")]
    else:
        cls = "S" + ("B" if _plurality(fractions, "t03") == 0 else "")
        cls += _BULGE_LETTER[_plurality(fractions, "t05")]
        if _plurality(fractions, "t04") == 0:
            cls += _LETTERS["t11"][_plurality(fractions, "t11")] + _LETTERS["t10"][_plurality(fractions, "t10")]
    if _plurality(fractions, "t06") == 0:
        cls += "(" + _LETTERS["t08"][_plurality(fractions, "t08")] + ")"
    return cls


def draw_votes(truth: GalaxyTruth, rng: np.random.Generator, n_volunteers: int | None = None) -> dict:
    """Draws the Galaxy Zoo 2 classifications of one galaxy, as one gz2_hart16.csv row (no ids).

    Volunteers see the true features dimmed by distance (`visibility`), so raw `fraction`s carry the
    GZ2 redshift bias; `debiased` divides it out with an imperfect estimate, as Hart et al. (2016)
    did statistically. `gz2_class` follows the plurality path of the debiased fractions.

    Args:
        truth: The galaxy.
        rng: Random generator; the only source of randomness.
        n_volunteers: Classifications of the image; None draws the GZ2 main-sample spread (median ~44).

    Returns:
        `total_classifications`, `total_votes`, `gz2_class` and every ANSWER_COLUMNS entry.
    """
    label = CLASSES[truth.label]
    seen = truth
    if rng.uniform() < WRONG_RATE:
        seen, label = _misread(truth, label, rng)
    lat = _latent(seen, label, rng)
    s = visibility(truth)
    clarity = max(math.sqrt(s) * rng.beta(*CLARITY_BETA), CLARITY_MIN)
    for task, p in lat.items():
        confused = np.array(_CONFUSED.get(task, (1.0,) * len(p)))
        lat[task] = clarity * p + (1 - clarity) * confused / confused.sum()
    s_hat = s**0.8 * math.exp(rng.normal(0.0, 0.08))  # the debiasing's estimate, slightly under-correcting
    # Visibility exponent of the 'yes' answer: features, bars (large, survive better), spiral arms.
    fade = {"t01": 1.0, "t03": 0.6, "t04": 1.0}
    for task, gamma in fade.items():
        k = 1 if task == "t01" else 0
        p = lat[task].copy()
        p[k] *= s**gamma
        lat[task] = p / p.sum()
    n_total = n_volunteers if n_volunteers is not None else int(38 + round(rng.gamma(2.0, 3.5)))
    counts: dict[str, np.ndarray] = {}
    for task, parent in PARENT.items():
        if parent is None:
            n = n_total if task == "t01" else int(counts["t01"][:2].sum())
        else:
            n = int(counts[parent[0]][parent[1]])
        counts[task] = _dirmult(rng, n, lat[task])
    out: dict = {"total_classifications": n_total, "total_votes": int(sum(c.sum() for c in counts.values()))}
    debiased_all: dict[str, float] = {}
    for task, c in counts.items():
        n = int(c.sum())
        frac = c / n if n else np.zeros(len(c))
        w = c * rng.uniform(0.9, 1.0, size=len(c))  # consistency weights (Willett et al. 2013)
        wfrac = w / w.sum() if n else np.zeros(len(c))
        deb = frac.copy()
        if task in fade and n:
            k = 1 if task == "t01" else 0
            cap = 1.0 - (frac[2] if task == "t01" else 0.0)
            deb[k] = min(frac[k] / s_hat ** fade[task], cap)
            deb[1 - k] = cap - deb[k]
        for i, stem in enumerate(TASKS[task]):
            d = round(float(deb[i]), 6)
            debiased_all[stem] = d
            out[f"{stem}_count"] = int(c[i])
            out[f"{stem}_weight"] = round(float(w[i]), 3)
            out[f"{stem}_fraction"] = round(float(frac[i]), 3)
            out[f"{stem}_weighted_fraction"] = round(float(wfrac[i]), 3)
            out[f"{stem}_debiased"] = d
            out[f"{stem}_flag"] = int(d >= 0.8 and n >= FLAG_MIN_VOTES)
    out["gz2_class"] = gz2_class_from_fractions(debiased_all)
    return out
