"""What a remote run fetches and how: the `ingest.remote` params other than `sources`, checked on construction."""

from __future__ import annotations

from dataclasses import dataclass

METHODS = ("jpeg", "frames")  # SDSS cutouts: SkyServer colour JPEGs | Lupton composites of the g, r, i frames


@dataclass(frozen=True)
class RemoteOptions:
    """What a remote run fetches and how (the `ingest.remote` params other than `sources`)."""

    cache_dir: str = "data/download_cache"  # persistent, outside data/raw: a killed run resumes from it
    dry_run: bool = False  # print what would be fetched and its size; fetch nothing
    max_galaxies: int = 20  # CALIFA galaxies (-1: all)
    hubble_types: tuple[str, ...] = ()  # keep only these CALIFA types ('E' = E0-E7); empty: all
    require_gz2_match: bool = True  # keep only CALIFA galaxies with a GZ2 row within crossmatch.radius_arcsec
    max_gz2_images: int = 200  # GZ2 field galaxies besides the CALIFA-matched rows (-1: all 304k)
    galaxy10: bool = False  # fetch Galaxy10_DECals.h5 (2.7 GB); false writes an empty Galaxy10 file
    galaxy10_max_images: int = -1  # keep a seeded random subset of Galaxy10 (-1: all 17,736)
    workers: int = 4  # concurrent downloads
    tries: int = 5  # attempts per file
    timeout_s: float = 60.0  # s, connect and per-read
    cutout_method: str = "jpeg"  # jpeg: SkyServer colour cutouts | frames: Lupton composites of the g, r, i frames
    lupton_stretch: float = 0.5  # frames: make_lupton_rgb stretch, nanomaggies (astropy's SDSS example)
    lupton_q: float = 10.0  # frames: make_lupton_rgb asinh softening Q
    frame_max_pad: float = 0.25  # frames: a stamp may lie this fraction off its frame (padded black); more: skipped

    def __post_init__(self) -> None:
        if self.cutout_method not in METHODS:
            raise ValueError(f"cutout_method={self.cutout_method!r}; expected one of {', '.join(METHODS)}")
        if not self.lupton_stretch > 0 or not self.lupton_q >= 0 or not 0 <= self.frame_max_pad < 1:
            raise ValueError(f"lupton_stretch={self.lupton_stretch}, lupton_q={self.lupton_q}, "
                             f"frame_max_pad={self.frame_max_pad}: expected lupton_stretch > 0, lupton_q >= 0 "
                             "and 0 <= frame_max_pad < 1")
