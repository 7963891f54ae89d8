"""Writers of the mock survey's tables (CALIFA morphology, GZ2 Hart+16, SDSS cutout index) and Galaxy10 HDF5."""

from __future__ import annotations

import logging
import os
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType

import h5py
import numpy as np
import pandas as pd

from specmorph.io.atomic import atomic_file
from specmorph.sky.truth import GalaxyTruth
from specmorph.sky.votes import GZ2_COLUMNS

log = logging.getLogger(__name__)

GALAXY10_SIZE = 256  # px, image side of Galaxy10 DECaLS
GALAXY10_PXSCALE = 0.262  # arcsec/px, DECaLS native scale
GZ2_SAMPLES = ("original", "extra", "stripe82")
# SDSS DR7 objid bit layout (skyVersion, rerun, run, camcol, firstField, field, obj); rerun 40 with
# skyVersion 1 gives the 18-digit 5877... ids of the GZ2 main sample.
_SKY_VERSION, _RERUN = 1, 40


def morphology_table(truths: list[GalaxyTruth]) -> pd.DataFrame:
    """The CALIFA morphology table: `name, ra, dec, redshift, hubtyp` (hubtyp as a type string, e.g. 'Sbc')."""
    return pd.DataFrame({"name": [g.id_str for g in truths], "ra": [g.ra for g in truths],
                         "dec": [g.dec for g in truths], "redshift": [g.redshift for g in truths],
                         "hubtyp": [g.hubtyp for g in truths]}, columns=["name", "ra", "dec", "redshift", "hubtyp"])


def ra_string(ra: float) -> str:
    """Sexagesimal right ascension 'HH:MM:SS.ss' of `ra` (deg), as in gz2_hart16.csv."""
    cs = round((ra % 360.0) / 15.0 * 360_000) % (24 * 360_000)  # hundredths of a second of time
    return f"{cs // 360_000:02d}:{cs // 6000 % 60:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"


def dec_string(dec: float) -> str:
    """Sexagesimal declination '+DD:MM:SS.s' of `dec` (deg), as in gz2_hart16.csv."""
    ds = round(abs(dec) * 36_000)  # tenths of an arcsec
    sign = "-" if dec < 0 and ds > 0 else "+"
    return f"{sign}{ds // 36_000:02d}:{ds // 600 % 60:02d}:{ds // 10 % 60:02d}.{ds % 10:d}"


def gz2_table(rows: list[dict]) -> pd.DataFrame:
    """The GZ2 Hart et al. (2016) catalogue, columns in GZ2_COLUMNS order.

    Args:
        rows: One dict per object: `dr7objid`, `ra`, `dec` (deg), optional `sample` (default
            'original') and the output of `votes.draw_votes`.

    Returns:
        The table; `rastring`/`decstring` are derived from ra/dec.
    """
    df = pd.DataFrame(rows)
    df["sample"] = df["sample"].fillna("original") if "sample" in df else "original"
    bad = set(df["sample"]) - set(GZ2_SAMPLES)
    if bad:
        raise ValueError(f"unknown GZ2 sample value(s): {sorted(map(str, bad))}")
    df["dr7objid"] = df["dr7objid"].astype(np.int64)
    df["rastring"] = [ra_string(x) for x in df["ra"]]
    df["decstring"] = [dec_string(x) for x in df["dec"]]
    missing = [c for c in GZ2_COLUMNS if c not in df]
    if missing:
        raise KeyError(f"GZ2 rows lack columns: {missing[:5]}{'...' if len(missing) > 5 else ''}")
    return df[GZ2_COLUMNS].reset_index(drop=True)


def cutout_index(rows: list[dict]) -> pd.DataFrame:
    """The SDSS cutout index: `name, ra, dec, file` (file relative to the index's directory)."""
    return pd.DataFrame(rows, columns=["name", "ra", "dec", "file"])


def make_dr7objid(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unique, realistic 18-digit SDSS DR7 objids (587...), with valid run/camcol/field/obj bit fields.

    Args:
        rng: Random generator.
        n: How many.

    Returns:
        (n,) int64 ids, in draw order.
    """
    out: list[int] = []
    seen: set[int] = set()
    while len(out) < n:
        k = n - len(out)
        run = rng.integers(94, 8163, size=k)  # SDSS imaging run numbers
        camcol = rng.integers(1, 7, size=k)
        field = rng.integers(11, 800, size=k)
        obj = rng.integers(1, 1500, size=k)
        ids = ((_SKY_VERSION << 59) | (_RERUN << 48) | (run << 32) | (camcol << 29) | (field << 16) | obj)
        for i in ids.tolist():
            if i not in seen:
                seen.add(i)
                out.append(i)
    return np.array(out, dtype=np.int64)


class Galaxy10Writer:
    """Streams images into a Galaxy10 DECaLS-format HDF5 file; the file appears only on a clean exit.

    Datasets as in Galaxy10_DECals.h5 (Leung & Bovy 2019): `images` uint8 (N, 256, 256, 3), `ans`
    uint8 (N,), `ra`, `dec`, `redshift` float64 (N,), `pxscale` float32 (N,) arcsec/px.
    """

    def __init__(self, path: str | os.PathLike, n: int) -> None:
        self.path = Path(path)
        self.n = n
        self._atomic: AbstractContextManager[Path] | None = None
        self._file: h5py.File | None = None

    def __enter__(self) -> Galaxy10Writer:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._atomic = atomic_file(self.path)
        f = h5py.File(self._atomic.__enter__(), "w")
        f.create_dataset("images", (self.n, GALAXY10_SIZE, GALAXY10_SIZE, 3), dtype=np.uint8,
                         chunks=(1, GALAXY10_SIZE, GALAXY10_SIZE, 3) if self.n else None, compression="gzip")
        f.create_dataset("ans", (self.n,), dtype=np.uint8)
        for name in ("ra", "dec", "redshift"):
            f.create_dataset(name, (self.n,), dtype=np.float64)
        f.create_dataset("pxscale", (self.n,), dtype=np.float32)
        self._file = f
        return self

    def write(self, i: int, image: np.ndarray, ans: int, ra: float, dec: float, redshift: float,
              pxscale: float = GALAXY10_PXSCALE) -> None:
        """Stores galaxy `i`: a (256, 256, 3) uint8 image, its Galaxy10 class code and position."""
        if self._file is None:
            raise RuntimeError("Galaxy10Writer.write called outside its `with` block")
        if image.shape != (GALAXY10_SIZE, GALAXY10_SIZE, 3) or image.dtype != np.uint8:
            raise ValueError(f"Galaxy10 image must be uint8 (256, 256, 3), got {image.dtype} {image.shape}")
        if not 0 <= ans <= 9:
            raise ValueError(f"Galaxy10 ans must be 0-9, got {ans}")
        f = self._file
        f["images"][i] = image
        f["ans"][i] = ans
        f["ra"][i], f["dec"][i], f["redshift"][i], f["pxscale"][i] = ra, dec, redshift, pxscale

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        atomic, self._atomic = self._atomic, None
        try:
            if self._file is not None:
                self._file.close()
                self._file = None
        except BaseException as err:
            atomic.__exit__(type(err), err, err.__traceback__)  # removes the temporary file
            raise
        atomic.__exit__(exc_type, exc, tb)  # on a clean exit renames the file into place
        if exc_type is None:
            log.info("wrote %d Galaxy10 images to %s", self.n, self.path)
