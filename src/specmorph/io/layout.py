"""Where each product lies inside a survey directory (data/raw/): the tree a real download fills."""

from __future__ import annotations

# Keys are the LocalSources/SkyConfig-style names (`_path` files, `_dir` directories).
LAYOUT = {
    "morphology_path": "califa/morphology.csv",
    "cube_dir": "califa/cubes",
    "cutout_index_path": "sdss/index.csv",
    "cutout_dir": "sdss/cutouts",
    "gz2_catalog_path": "gz2/gz2_hart16.csv",
    "gz2_image_dir": "gz2/images",
    "galaxy10_path": "galaxy10/Galaxy10_DECals.h5",
    "truth_dir": "truth",
}
CUBE_SUFFIX = ".V500.rscube.fits.gz"  # eCALIFA V500 cube: <name>.V500.rscube.fits.gz
SURVEYS = ("califa", "manga")  # the integral-field surveys whose cubes the stages read
SURVEY_CHOICES = (*SURVEYS, "both")  # the values of `ingest.survey`
DRPALL_PATH = "manga/drpall-v3_1_1.fits"  # MaNGA's DRPall summary table, when the survey has MaNGA galaxies


def cube_file(name: str, survey: str = "califa") -> str:
    """A galaxy's cube file name in the cube directory: `<name>.V500.rscube.fits.gz` for eCALIFA, or
    `manga-<plate-ifu>-LOGCUBE.fits.gz` for MaNGA (its `name` is the plate-IFU)."""
    if survey == "manga":
        return f"manga-{name}-LOGCUBE.fits.gz"
    if survey != "califa":
        raise ValueError(f"unknown survey {survey!r}; expected one of {', '.join(SURVEYS)}")
    return f"{name}{CUBE_SUFFIX}"
