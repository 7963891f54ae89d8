"""A tiny mock survey served from the test HTTP server in the real archives' formats (eCALIFA ECSV or DR3 CSV,
V500 cubes, SkyServer JPEGs, gz2_hart16.csv.gz, Galaxy10_DECals.h5), and the RemoteSources pointing at it."""

from __future__ import annotations

import gzip
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
import pandas as pd
from astropy.coordinates import SkyCoord
from astropy.table import Table

from specmorph.io.layout import CUBE_SUFFIX, DRPALL_PATH, LAYOUT, cube_file
from specmorph.remote.sources import RemoteSources
from specmorph.sky.survey import SkyConfig, generate_survey
from specmorph.taxonomy import CALIFA_TYPES

MOCK = SkyConfig(n_califa=8, n_gz2_field=200, n_galaxy10=6, cutout_size=48, cube_nx=8, cube_ny=8, workers=1,
                 gz2_footprint_fraction=1.0)
_DR3_HEADER = "".join(f"# {line}\n" for line in (
    "AUTHOR: CALIFA collaboration", "SOURCE: Own analysis of SDSS DR7 imaging",
    "COLUMN1: CALIFAID, int, , the ID of the CALIFA galaxy", "COLUMN2: REALNAME, string , Galaxy name",
    "COLUMN3: DBName, string, , Name in CALIFA database", "COLUMN4: RA, float, degrees, right ascension J2000.0",
    "COLUMN5: DE, float, degrees, declination J2000.0", "COLUMN6: hubtyp, int, , Hubble type",
    "COLUMN7: bar, int, Barredness A (0) or AB (1) or B (2)", "COLUMN8: merg, int, , Merging (1) or Isolated (0)"))
CUTOUT_TEMPLATE = "sdss/{ra:.6f}_{dec:.6f}.jpg?scale={scale:.4f}&width={width}&height={height}"
GZ2_IMAGE_TEMPLATE = "gz2img/{ra:.6f}_{dec:.6f}.jpg?scale={scale:.4f}"


def build_mock(root: Path) -> Path:
    """Writes the mock survey under `root/mock` and returns it."""
    out = root / "mock"
    generate_survey(out, MOCK)
    return out


def ecalifa_table(morph: pd.DataFrame) -> bytes:
    """The morphology table in the eCALIFA global-table layout (ECSV: ID, Name, RA, DEC, z, type, ...)."""
    table = Table({"ID": list(range(1, len(morph) + 1)), "Name": morph["name"].tolist(), "RA": morph["ra"].tolist(),
                   "DEC": morph["dec"].tolist(), "z": morph["redshift"].tolist(),
                   "type": [t if isinstance(t, str) else "U" for t in morph["hubtyp"]],
                   "QC_flag": [0] * len(morph)})
    buf = io.StringIO()
    table.write(buf, format="ascii.ecsv")
    return buf.getvalue().encode()


def dr3_table(morph: pd.DataFrame) -> bytes:
    """The morphology table in the CALIFA DR3 layout ('#' header, no column line, integer hubtyp, no redshift)."""
    rows = [f"{i}, {n}, {n},{ra!r},{dec!r},{CALIFA_TYPES.index(t) if t in CALIFA_TYPES else -1},0,0"
            for i, (n, ra, dec, t) in enumerate(zip(morph["name"], morph["ra"], morph["dec"], morph["hubtyp"],
                                                    strict=True), start=1)]
    return (_DR3_HEADER + "\n".join(rows) + "\n").encode()


@dataclass
class Archive:
    """The mock survey published on `server`; `sources()` gives the RemoteSources for it."""

    server: object
    mock: Path
    table_format: str = "ecalifa"  # ecalifa | dr3 | drpall (a MaNGA mock: serves its DRPall and LOGCUBEs)
    gz2_offset_arcsec: tuple[float, float] | None = None  # move every GZ2 position by a uniform draw in this range

    def __post_init__(self) -> None:
        self.morph = pd.read_csv(self.mock / LAYOUT["morphology_path"], dtype={"name": str})
        self.gz2 = pd.read_csv(self.mock / LAYOUT["gz2_catalog_path"], dtype={"dr7objid": str})
        self.names = self.morph["name"].tolist()
        self.gz2_table = (self.mock / LAYOUT["gz2_catalog_path"]).read_bytes()
        if self.gz2_offset_arcsec is not None:  # as real GZ2 (SDSS) centres lie off the eCALIFA positions
            rng = np.random.default_rng(0)
            pos = SkyCoord(self.gz2["ra"].to_numpy() * u.deg, self.gz2["dec"].to_numpy() * u.deg)
            moved = pos.directional_offset_by(rng.uniform(0, 360, len(pos)) * u.deg,
                                              rng.uniform(*self.gz2_offset_arcsec, len(pos)) * u.arcsec)
            self.gz2 = self.gz2.assign(ra=moved.ra.deg, dec=moved.dec.deg)
            self.gz2_table = self.gz2.to_csv(index=False).encode()

    def cube_path(self, name: str) -> str:
        if self.survey_of(name) == "manga":  # MaNGA's SAS tree: <plate>/stack/manga-<plate>-<ifu>-LOGCUBE.fits.gz
            return f"manga/{name.split('-')[0]}/stack/{cube_file(name, 'manga')}"
        return f"cubes/{name}{CUBE_SUFFIX}"

    def cube_bytes(self, name: str) -> bytes:
        return (self.mock / LAYOUT["cube_dir"] / cube_file(name, self.survey_of(name))).read_bytes()

    def survey_of(self, name: str) -> str:
        """Whose cube galaxy `name` has: the mock's `survey` column (a both-survey mock), else the table's."""
        if "survey" in self.morph.columns:
            return str(self.morph.loc[self.morph["name"] == name, "survey"].iloc[0])
        return "manga" if self.table_format == "drpall" else "califa"

    def publish(self, skip_cubes: tuple[str, ...] = ()) -> Archive:
        """Serves every product; cubes of `skip_cubes` are left out (404)."""
        s = self.server
        if (self.mock / DRPALL_PATH).is_file():
            s.add("manga/drpall-v3_1_1.fits", (self.mock / DRPALL_PATH).read_bytes(), "application/fits")
        if self.table_format != "drpall":  # eCALIFA's table lists the eCALIFA galaxies only
            morph = self.morph[[self.survey_of(n) == "califa" for n in self.names]]
            s.add("califa/table.csv", ecalifa_table(morph) if self.table_format == "ecalifa" else dr3_table(morph),
                  "text/plain")
        for name in self.names:
            if name not in skip_cubes:
                s.add(self.cube_path(name), self.cube_bytes(name), "application/fits")
        for name, ra, dec in zip(self.morph["name"], self.morph["ra"], self.morph["dec"], strict=True):
            s.add(CUTOUT_TEMPLATE.split("?")[0].format(ra=ra, dec=dec),
                  (self.mock / LAYOUT["cutout_dir"] / f"{name}.jpg").read_bytes(), "image/jpeg")
        s.add("gz2/gz2_hart16.csv.gz", gzip.compress(self.gz2_table, mtime=0),
              "application/gzip")
        for objid, ra, dec in zip(self.gz2["dr7objid"], self.gz2["ra"], self.gz2["dec"], strict=True):
            s.add(GZ2_IMAGE_TEMPLATE.split("?")[0].format(ra=ra, dec=dec),
                  (self.mock / LAYOUT["gz2_image_dir"] / f"{objid}.jpg").read_bytes(), "image/jpeg")
        s.add("g10/Galaxy10_DECals.h5", self.galaxy10_bytes, "application/x-hdf5")
        return self

    @property
    def galaxy10_bytes(self) -> bytes:
        return (self.mock / LAYOUT["galaxy10_path"]).read_bytes()

    def sources(self, **overrides) -> RemoteSources:
        """RemoteSources whose every URL points at the test server."""
        s = self.server
        values = {"califa_table_url": s.url("califa/table.csv"), "califa_table_format": self.table_format,
                  "califa_table_sha256": "", "cube_url_template": s.url("cubes/{name}" + CUBE_SUFFIX),
                  "manga_drpall_url": s.url("manga/drpall-v3_1_1.fits"),
                  "manga_cube_url_template": s.url("manga/{plate}/stack/manga-{plate}-{ifudesign}-LOGCUBE.fits.gz"),
                  "cutout_url_template": s.url(CUTOUT_TEMPLATE), "cutout_size": 48,
                  "gz2_table_url": s.url("gz2/gz2_hart16.csv.gz"),
                  "gz2_image_url_template": s.url(GZ2_IMAGE_TEMPLATE), "gz2_image_size": 48,
                  "galaxy10_url": s.url("g10/Galaxy10_DECals.h5"),
                  "galaxy10_sha256": hashlib.sha256(self.galaxy10_bytes).hexdigest()}
        return RemoteSources(**{**values, **overrides})

    def params(self, **overrides) -> dict:
        """The `sources` block of ingest.remote as plain YAML values."""
        src = self.sources(**overrides)
        return {k: getattr(src, k) for k in src.__dataclass_fields__}


def crossmatch_and_label(stage, params: Path, raw: Path, work: Path) -> Path:
    """Runs the crossmatch and labels stages on an ingested `raw` folder; returns the catalog folder under `work`
    (matched.csv, duplicates.csv, images.csv; their metrics cm.json and labels.json in `work`)."""
    cat = work / "catalog"
    stage("crossmatch").main(["--params", str(params), "--morphology", str(raw / LAYOUT["morphology_path"]),
                              "--gz2", str(raw / LAYOUT["gz2_catalog_path"]), "--out", str(cat / "matched.csv"),
                              "--duplicates", str(cat / "duplicates.csv"), "--metrics", str(work / "cm.json")])
    stage("labels").main(["--params", str(params), "--morphology", str(raw / LAYOUT["morphology_path"]),
                          "--cutout-index", str(raw / LAYOUT["cutout_index_path"]),
                          "--gz2", str(raw / LAYOUT["gz2_catalog_path"]),
                          "--gz2-image-dir", str(raw / LAYOUT["gz2_image_dir"]), "--matched", str(cat / "matched.csv"),
                          "--duplicates", str(cat / "duplicates.csv"), "--out", str(cat / "images.csv"),
                          "--metrics", str(work / "labels.json")])
    return cat
