"""The three mock samples: the eCALIFA cube sample, the Galaxy Zoo 2 sample and Galaxy10 DECaLS."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from specmorph.sky.catalogs import make_dr7objid
from specmorph.sky.population import calibration, draw_galaxy
from specmorph.sky.truth import GalaxyTruth
from specmorph.taxonomy import CALIFA_TYPES, CLASSES, GALAXY10_CLASSES

# The mock sky: CALIFA galaxies spread over RA 100-260°, Dec -5..+60°; the GZ2 footprint is an RA
# window starting at 150° whose width makes the requested fraction of CALIFA galaxies fall in it
# (in reality about 231 of ~900 eCALIFA galaxies have a GZ2 counterpart).
_RA_RANGE = (100.0, 260.0)  # deg
_DEC_RANGE = (-5.0, 60.0)  # deg
_GZ2_RA0 = 150.0  # deg
ASTROMETRIC_JITTER = 0.3  # arcsec, rms offset between CALIFA and SDSS/GZ2 positions
_SHRED_PROB = 0.02  # a CALIFA galaxy also catalogued as a second, shredded GZ2 object
# Class mix of the field galaxies of GZ2 (plurality classes of the main sample, approximately).
GZ2_FIELD_MIX = {"barred_spiral": 0.14, "cigar_smooth": 0.04, "edge_on_with_bulge": 0.07,
                 "edge_on_without_bulge": 0.05, "in_between_smooth": 0.20, "round_smooth": 0.16,
                 "unbarred_loose_spiral": 0.14, "unbarred_tight_spiral": 0.20}
# Class counts of the real Galaxy10 DECaLS file (17 736 images), in `ans` order.
GALAXY10_COUNTS = (1081, 1853, 2645, 2027, 334, 2043, 1829, 2628, 1423, 1873)
_GALAXY10_SHARED = 0.3  # fraction of Galaxy10 images that re-observe a GZ2 field galaxy


@dataclass(frozen=True)
class Gz2Entry:
    """One row of the mock GZ2 catalogue: the observed object and the galaxy it belongs to."""

    dr7objid: int
    truth: GalaxyTruth  # ra/dec are the GZ2 catalogue position
    galaxy_id: str  # the physical galaxy (CALIFA name or the field galaxy's own id)
    califa_name: str  # "" for field galaxies
    shred: bool  # a duplicate catalogue entry of a CALIFA galaxy


def random_positions(rng: np.random.Generator, n: int, ra_range: tuple[float, float],
                      dec_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Uniform positions on the sphere inside an RA/Dec box (deg)."""
    ra = rng.uniform(*ra_range, size=n)
    s = rng.uniform(math.sin(math.radians(dec_range[0])), math.sin(math.radians(dec_range[1])), size=n)
    # The C library's asin, one value at a time: numpy's arcsin has an AVX-512 kernel whose results differ
    # from the scalar one in the last bit, and every catalogue and header prints the declination in full.
    return ra, np.array([math.degrees(math.asin(v)) for v in s], dtype=np.float64)


def gz2_ra_window(footprint_fraction: float) -> tuple[float, float]:
    """The RA range (deg) of the mock GZ2 footprint."""
    width = (_RA_RANGE[1] - _RA_RANGE[0]) * footprint_fraction
    return _GZ2_RA0, min(_GZ2_RA0 + width, _RA_RANGE[1])


def offset_position(ra: float, dec: float, dist_arcsec: float, angle: float) -> tuple[float, float]:
    """The position `dist_arcsec` from (ra, dec) towards position angle `angle` (rad)."""
    d = dist_arcsec / 3600
    return (ra + d * math.sin(angle) / math.cos(math.radians(dec))) % 360.0, dec + d * math.cos(angle)


def califa_sample(rng: np.random.Generator, n: int) -> list[GalaxyTruth]:
    """Draws the eCALIFA-like cube sample, types in the real proportions.

    Args:
        rng: Random generator.
        n: Number of galaxies.

    Returns:
        One truth per galaxy, named MOCK0001, MOCK0002, ...
    """
    return typed_sample(rng, [f"MOCK{i + 1:04d}" for i in range(n)], _RA_RANGE)


def typed_sample(rng: np.random.Generator, names: list[str], ra_range: tuple[float, float],
                 dec_range: tuple[float, float] = _DEC_RANGE) -> list[GalaxyTruth]:
    """One galaxy per name, its Hubble type drawn from the real eCALIFA mix, uniform on the sky in the box.

    The cube samples of both surveys (eCALIFA, and MaNGA in `sky.manga`) are drawn this way, their
    spectra copied from the real galaxies of each type dealt from one deck (`population.joint_draw`).
    """
    mix = calibration()["type_mix"]
    types = [t for t in CALIFA_TYPES if mix.get(t, 0) > 0]
    p = np.array([mix[t] for t in types])
    p = p / p.sum()
    ra, dec = random_positions(rng, len(names), ra_range, dec_range)
    deck: dict[str, list[int]] = {}
    return [draw_galaxy(rng, name, float(ra[i]), float(dec[i]), None, hubtyp=types[rng.choice(len(types), p=p)],
                        deck=deck) for i, name in enumerate(names)]


def gz2_sample(rng: np.random.Generator, califa: list[GalaxyTruth], n_field: int,
               footprint_fraction: float) -> list[Gz2Entry]:
    """Draws the GZ2 catalogue objects: CALIFA galaxies inside the footprint plus field galaxies.

    Args:
        rng: Random generator.
        califa: The CALIFA sample.
        n_field: Number of field galaxies (not in CALIFA).
        footprint_fraction: Fraction of the CALIFA RA range covered by GZ2.

    Returns:
        Catalogue entries; CALIFA galaxies come first, some with a shredded duplicate.
    """
    lo, hi = gz2_ra_window(footprint_fraction)
    objids = iter(int(i) for i in make_dr7objid(rng, 2 * len(califa) + n_field))  # unique
    entries = []
    for g in califa:
        if not lo <= g.ra < hi:
            continue
        ra, dec = offset_position(g.ra, g.dec, abs(rng.normal(0, ASTROMETRIC_JITTER)), rng.uniform(0, 2 * np.pi))
        entries.append(Gz2Entry(next(objids), replace(g, ra=ra, dec=dec), g.id_str, g.id_str, False))
        if rng.uniform() < _SHRED_PROB:
            ra, dec = offset_position(g.ra, g.dec, rng.uniform(1.2, 2.5), rng.uniform(0, 2 * np.pi))
            entries.append(Gz2Entry(next(objids), replace(g, ra=ra, dec=dec), g.id_str, g.id_str, True))
    names = list(GZ2_FIELD_MIX)
    p = np.array([GZ2_FIELD_MIX[k] for k in names])
    ra, dec = random_positions(rng, n_field, (lo, hi), _DEC_RANGE)
    for i in range(n_field):
        objid = next(objids)
        label = names[rng.choice(len(names), p=p / p.sum())]
        g = draw_galaxy(rng, str(objid), float(ra[i]), float(dec[i]), None, label_name=label, field=True)
        entries.append(Gz2Entry(objid, g, g.id_str, "", False))
    return entries


def galaxy10_sample(rng: np.random.Generator, n: int, gz2: list[Gz2Entry]) -> list[GalaxyTruth]:
    """Draws the Galaxy10 DECaLS galaxies in the real class proportions.

    About 30% re-observe a GZ2 field galaxy of the same class (same id, same truth), as the real
    Galaxy10 DECaLS overlaps the SDSS footprint: evaluation must group images by galaxy.

    Args:
        rng: Random generator.
        n: Number of images.
        gz2: The GZ2 sample, for the shared galaxies.

    Returns:
        One truth per image; `galaxy10` holds the `ans` code.
    """
    counts = np.array(GALAXY10_COUNTS, float)
    by_label: dict[int, list[GalaxyTruth]] = {}
    for e in gz2:
        if not e.califa_name:
            by_label.setdefault(e.truth.label, []).append(e.truth)
    taken: set[str] = set()
    out = []
    for i in range(n):
        code = int(rng.choice(10, p=counts / counts.sum()))
        name = GALAXY10_CLASSES[code]
        pool = [g for g in by_label.get(CLASSES.index(name), []) if g.id_str not in taken] if code > 1 else []
        if pool and rng.uniform() < _GALAXY10_SHARED:
            g = pool[int(rng.integers(len(pool)))]
            taken.add(g.id_str)
            out.append(replace(g, galaxy10=code))
            continue
        if code <= 1:  # disturbed / merging: an underlying disc galaxy, rendered distorted
            name = str(rng.choice(["unbarred_loose_spiral", "unbarred_tight_spiral", "in_between_smooth"]))
        ra, dec = random_positions(rng, 1, (0.0, 360.0), (-20.0, 35.0))
        out.append(draw_galaxy(rng, f"G10_{i:06d}", float(ra[0]), float(dec[0]), None,
                               label_name=name, galaxy10=code, field=True))
    return out
