"""Where the real archives live: every URL and file-name template of a remote run, and where each came from.

Nothing else in specmorph holds a URL. The defaults below were looked up in the archives' documentation
and in public code that uses them (none could be reached from the machine this was written on, so the
`remote_data` tests in tests/remote are the check that each still answers):

- eCALIFA sample table (895 galaxies: Name, RA, DEC, z, Hubble `type`, ECSV) and the CALIFA DR3
  morphology table (CALIFAID, REALNAME, DBName, RA, DE, integer `hubtyp`, bar, merg; '#' header, no
  column line): the EDGE-CALIFA database, github.com/tonywong94/edge_pydb (MIT), pinned to commit
  9aaef41 so the sha256 below stays valid (dat_glob/califa/ecalifa_global.csv and
  dat_glob/califa/build/CALIFA_3_joint_classnum_new_update.csv).
- eCALIFA V500 cubes (Sánchez et al. 2023, pipeline v2.3): ifs.astroscu.unam.mx/CALIFA/V500/v2.3/,
  directory `reduced_masked/`; the file naming `<name>.V500.rscube.fits.gz` is assumed to be DR3's.
- CALIFA DR3 V500 cubes (Sánchez et al. 2016, pipeline v2.2): califa.caha.es/FTP-PUB/reduced/V500/reduced_v2.2/
  `<name>.V500.rscube.fits.gz` (also ftp://ftp.caha.es/CALIFA/reduced/).
- SDSS DR10 colour cutouts: the DR10 ImgCutout service (skyserver.sdss3.org/dr10/en/help/docs/api.aspx#cutout),
  `getjpeg.aspx?ra=&dec=&scale=&width=&height=`. The imaging is the same from DR8 to DR17;
  SDSS_DR17_CUTOUT_URL is the maintained SkyServerWS endpoint with the same parameters.
- Galaxy Zoo 2, Hart et al. (2016) table `gz2_hart16.csv.gz` (304,122 rows): data.galaxyzoo.org, hosted at
  gz2hart.s3.amazonaws.com.
- GZ2 images: the official set (Willett et al. 2013; zenodo.org/records/3565489, images_gz2.zip ~3.4 GB
  with gz2_filename_mapping.csv) is one zip, so by default each selected GZ2 object gets a SkyServer cutout
  at its RA/Dec instead; `gz2_image_dir` (+ `gz2_mapping_path`) uses the unzipped official images.
- Galaxy10 DECaLS (Leung & Bovy 2019; 17,736 images, ~2.7 GB): zenodo.org/records/10845026, sha256 as
  published by the astroNN documentation and used by several public loaders.
- MaNGA DR17 (`ingest.survey: manga`): the DRP summary table `drpall-v3_1_1.fits` and the per-observation
  `manga-<plate>-<ifudesign>-LOGCUBE.fits.gz` under `<plate>/stack/`, on the Science Archive Server at
  data.sdss.org/sas/dr17/manga/spectro/redux/v3_1_1/ (the DR17 MaNGA data-access documentation; marvin's
  `get_drpall_table` and downloadList read the same tree). No checksum is pinned (the SAS publishes none per
  file in this tree); sizes are estimates: DRPall ~40 MB, a LOGCUBE ~150 MB.
- SDSS DR10 corrected frames (`cutout_method: frames`): the Science Archive Server layout
  `sas/dr10/boss/photoObj/frames/<rerun>/<run>/<camcol>/frame-<band>-<run6>-<camcol>-<field4>.fits.bz2`
  (the SDSS-III bulk-data documentation; astroquery's SDSSClass.IMAGING_URL_SUFFIX builds the same path);
  run/rerun/camcol/field and the r-band pixel position of the detections near a galaxy come from the DR10
  SkyServer SQL search (astroquery 0.4.11 sends DR10 SQL to `/dr10/en/tools/search/x_sql.aspx` with `cmd`
  and `format=csv`; SDSS_DR17_SQL_URL is the SkyServerWS endpoint of a later release with the same rerun-301
  imaging).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from urllib.parse import quote, urlsplit

EDGE_PYDB = ("https://raw.githubusercontent.com/tonywong94/edge_pydb/"
             "9aaef410d34e6bf05e0db7e9600cedf4d70415d1/edge_pydb/dat_glob/califa")
ECALIFA_TABLE_URL = f"{EDGE_PYDB}/ecalifa_global.csv"
ECALIFA_TABLE_SHA256 = "9ab358b2e85ad4e38a0627605ff63950a039af84da269446819bd0d10435ac1c"  # 1,405,700 B
DR3_TABLE_URL = f"{EDGE_PYDB}/build/CALIFA_3_joint_classnum_new_update.csv"
DR3_TABLE_SHA256 = "c1e6bb4f8d50c38666fa4f97e35c546b17091f62e857b555738bac697d9f3a94"  # 74,495 B
ECALIFA_CUBE_URL = "http://ifs.astroscu.unam.mx/CALIFA/V500/v2.3/reduced_masked/{name}.V500.rscube.fits.gz"
DR3_CUBE_URL = "https://califa.caha.es/FTP-PUB/reduced/V500/reduced_v2.2/{name}.V500.rscube.fits.gz"
SDSS_DR10_CUTOUT_URL = ("http://skyservice.pha.jhu.edu/DR10/ImgCutout/getjpeg.aspx"
                        "?ra={ra:.6f}&dec={dec:.6f}&scale={scale:.6f}&width={width}&height={height}")
SDSS_DR17_CUTOUT_URL = ("https://skyserver.sdss.org/dr17/SkyServerWS/ImgCutout/getjpeg"
                        "?ra={ra:.6f}&dec={dec:.6f}&scale={scale:.6f}&width={width}&height={height}")
MANGA_DR17 = "https://data.sdss.org/sas/dr17/manga/spectro/redux/v3_1_1"
MANGA_DRPALL_URL = f"{MANGA_DR17}/drpall-v3_1_1.fits"
MANGA_CUBE_URL = f"{MANGA_DR17}/{{plate}}/stack/manga-{{plate}}-{{ifudesign}}-LOGCUBE.fits.gz"
GZ2_HART16_URL = "https://gz2hart.s3.amazonaws.com/gz2_hart16.csv.gz"
GALAXY10_URL = "https://zenodo.org/records/10845026/files/Galaxy10_DECals.h5"
GALAXY10_SHA256 = "19aefc477c41bb7f77ff07599a6b82a038dc042f889a111b0d4d98bb755c1571"
SDSS_DR10_SQL_URL = "https://skyserver.sdss.org/dr10/en/tools/search/x_sql.aspx?cmd={cmd}&format=csv"
SDSS_DR17_SQL_URL = "https://skyserver.sdss.org/dr17/SkyServerWS/SearchTools/SqlSearch?cmd={cmd}&format=csv"
SDSS_FIELD_SQL = ("SELECT p.objID AS objid, p.run, p.rerun, p.camcol, p.field, p.rowc_r, p.colc_r, n.distance "
                  "FROM dbo.fGetNearbyObjEq({ra:.6f}, {dec:.6f}, 0.1) AS n "
                  "JOIN PhotoObjAll AS p ON p.objID = n.objID ORDER BY n.distance")  # 0.1' = 6" around the galaxy
SDSS_DR10_FRAME_URL = ("https://data.sdss.org/sas/dr10/boss/photoObj/frames/{rerun}/{run}/{camcol}/"
                       "frame-{band}-{run:06d}-{camcol}-{field:04d}.fits.bz2")

SDSS_PIXSCALE = 0.396127  # arcsec/px, native SDSS imaging scale
TABLE_FORMATS = ("ecalifa", "dr3", "drpall")
# Approximate sizes (B) for the dry run: the two tables as pinned above; a V500 cube (78×73×1877 flux, error
# and flags, gzipped) 30-60 MB; a 424² SkyServer JPEG 15-40 kB; gz2_hart16.csv.gz ~0.2 GB; Galaxy10 2.7 GB;
# an SQL answer (a few detections) ~1 kB; a corrected frame (2048×1489 float32 = 12.2 MB, bzip2) ~3-4 MB;
# MaNGA's DRPall ~40 MB and a LOGCUBE ~150 MB (estimates).
EST_BYTES = {"califa_table": 1_405_700, "drpall": 40_000_000, "manga_cube": 150_000_000,
             "gz2_table": 200_000_000, "cube": 45_000_000, "cutout": 30_000,
             "gz2_image": 30_000, "galaxy10": 2_735_000_000, "sdss_field": 1_000, "frame": 3_500_000}
# Galaxies in each sample table (for a dry run before the table is in the cache).
EST_GALAXIES = {"ecalifa": 895, "dr3": 1369, "drpall": 10_010}  # drpall: DR17's galaxies with a final cube

_FRAME_FIELDS = {"run", "camcol", "field", "band"}
_CUBE_FIELDS = ({"name"}, {"plate", "ifudesign"})  # a cube URL names the galaxy, or a MaNGA plate-IFU's two parts
_NEEDS = {"cube_url_template": set(), "manga_cube_url_template": set(), "cutout_url_template": {"ra", "dec"},
          "gz2_image_url_template": {"ra", "dec"}, "sdss_sql_url_template": {"cmd"}, "sdss_field_sql": {"ra", "dec"},
          "sdss_frame_url_template": _FRAME_FIELDS}
_ALLOWED = {"cube_url_template": {"name", "plate", "ifudesign"},
            "manga_cube_url_template": {"name", "plate", "ifudesign"},
            "cutout_url_template": {"ra", "dec", "scale", "width", "height"},
            "gz2_image_url_template": {"ra", "dec", "scale", "width", "height"},
            "sdss_sql_url_template": {"cmd", "ra", "dec"}, "sdss_field_sql": {"ra", "dec"},
            "sdss_frame_url_template": _FRAME_FIELDS | {"rerun"}}


def template_fields(template: str) -> set[str]:
    """The field names of a str.format template: '{ra:.6f}/{name}' -> {'ra', 'name'}."""
    return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}


def url_basename(url: str, default: str) -> str:
    """The last path segment of `url` ('https://h/a/b.csv.gz?x=1' -> 'b.csv.gz'), or `default`."""
    return PurePosixPath(urlsplit(url).path).name or default


@dataclass(frozen=True)
class RemoteSources:
    """Every URL and template of a remote run (the `ingest.remote.sources` params); see the module docstring."""

    califa_table_url: str = ECALIFA_TABLE_URL
    califa_table_format: str = "ecalifa"  # ecalifa (ECSV: Name, RA, DEC, z, type) | dr3 (DBName, RA, DE, hubtyp)
    # | drpall (MaNGA's DRPall FITS table, set by ingest.survey: manga from the manga_* keys below)
    califa_table_sha256: str = ECALIFA_TABLE_SHA256  # "" skips the check
    cube_url_template: str = ECALIFA_CUBE_URL  # {name}, or {plate} and {ifudesign} of a MaNGA plate-IFU name
    cutout_url_template: str = SDSS_DR10_CUTOUT_URL  # {ra} {dec} (deg) {scale} (arcsec/px) {width} {height} (px)
    cutout_scale: float = SDSS_PIXSCALE  # arcsec/px: 424 px span 168", a CALIFA galaxy's whole disc
    cutout_size: int = 424  # px
    gz2_table_url: str = GZ2_HART16_URL
    gz2_table_sha256: str = ""
    gz2_image_url_template: str = SDSS_DR10_CUTOUT_URL
    gz2_image_scale: float = 0.2  # arcsec/px; GZ2 used 0.02 petroR90_r per px (~0.15-0.25" at r < 17)
    gz2_image_size: int = 424  # px, as the GZ2 images
    gz2_image_dir: str = ""  # instead of cutouts: unzipped official GZ2 images, <dr7objid>.jpg or <asset_id>.jpg
    gz2_mapping_path: str = ""  # with <asset_id>.jpg images: gz2_filename_mapping.csv (objid, asset_id)
    manga_drpall_url: str = MANGA_DRPALL_URL  # ingest.survey: manga: the sample table
    manga_drpall_sha256: str = ""
    manga_cube_url_template: str = MANGA_CUBE_URL  # {plate} {ifudesign} (or {name}, the plate-IFU)
    galaxy10_url: str = GALAXY10_URL
    galaxy10_sha256: str = GALAXY10_SHA256
    sdss_sql_url_template: str = SDSS_DR10_SQL_URL  # cutout_method frames: {cmd} (URL-quoted SQL); may use {ra} {dec}
    sdss_field_sql: str = SDSS_FIELD_SQL  # {ra} {dec} (deg) -> run, rerun, camcol, field, rowc_r, colc_r per detection
    sdss_frame_url_template: str = SDSS_DR10_FRAME_URL  # {rerun} {run} {camcol} {field} {band}

    def __post_init__(self) -> None:
        if self.califa_table_format not in TABLE_FORMATS:
            raise ValueError(f"califa_table_format={self.califa_table_format!r}; expected one of "
                             f"{', '.join(TABLE_FORMATS)}")
        for key, needed in _NEEDS.items():
            try:
                found = template_fields(getattr(self, key))
            except ValueError as err:
                raise ValueError(f"{key}: not a valid template ({err})") from err
            if key.endswith("cube_url_template") and not any(alt <= found for alt in _CUBE_FIELDS):
                raise ValueError(f"{key}={getattr(self, key)!r}: needs the field name, or plate and ifudesign")
            if needed - found or found - _ALLOWED[key]:
                raise ValueError(f"{key}={getattr(self, key)!r}: needs the fields {sorted(needed)} and may use "
                                 f"only {sorted(_ALLOWED[key])}; found {sorted(found)}")
        for key in ("cutout_size", "gz2_image_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}={getattr(self, key)}; expected a positive number of pixels")
        for key in ("cutout_scale", "gz2_image_scale"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{key}={getattr(self, key)}; expected a positive scale in arcsec/px")
        if self.gz2_mapping_path and not self.gz2_image_dir:
            raise ValueError("gz2_mapping_path is set but gz2_image_dir is empty; give the unzipped image directory")

    def cube_url(self, name: str) -> str:
        """URL of galaxy `name`'s cube (the name is percent-quoted; '+' and '.' are kept); a MaNGA name is its
        plate-IFU, `{plate}` and `{ifudesign}` its two parts."""
        plate, _, ifu = name.partition("-")
        return self.cube_url_template.format(name=quote(name, safe="+"), plate=plate, ifudesign=ifu)

    @property
    def survey(self) -> str:
        """Whose cubes the sample table lists: manga for the DRPall table (`for_manga`), else califa."""
        return "manga" if self.califa_table_format == "drpall" else "califa"

    def for_manga(self) -> RemoteSources:
        """These sources with the MaNGA DRPall as the sample table and LOGCUBEs as the cubes."""
        return replace(self, califa_table_url=self.manga_drpall_url, califa_table_format="drpall",
                       califa_table_sha256=self.manga_drpall_sha256, cube_url_template=self.manga_cube_url_template)

    def cutout_url(self, ra: float, dec: float) -> str:
        """SkyServer colour cutout of a CALIFA galaxy at (ra, dec) in degrees."""
        return self.cutout_url_template.format(ra=float(ra), dec=float(dec), scale=self.cutout_scale,
                                               width=self.cutout_size, height=self.cutout_size)

    def gz2_image_url(self, ra: float, dec: float) -> str:
        """Image of a GZ2 object at (ra, dec) in degrees."""
        return self.gz2_image_url_template.format(ra=float(ra), dec=float(dec), scale=self.gz2_image_scale,
                                                  width=self.gz2_image_size, height=self.gz2_image_size)

    def field_sql(self, ra: float, dec: float) -> str:
        """The SQL that lists the SDSS detections (and their frames) near (ra, dec) in degrees."""
        return self.sdss_field_sql.format(ra=float(ra), dec=float(dec))

    def frame_url(self, band: str, *, run: int, rerun: int, camcol: int, field: int) -> str:
        """SDSS corrected frame of one band (g, r, i, ...) of run/rerun/camcol/field."""
        return self.sdss_frame_url_template.format(band=band, run=int(run), rerun=int(rerun), camcol=int(camcol),
                                                   field=int(field))
