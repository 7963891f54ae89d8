"""Tests of the MaNGA LOGCUBE reader on small files in the DR17 format (FLUX, IVAR, MASK, WAVE extensions)."""

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from specmorph.errors import InputError
from specmorph.io import gzipfits
from specmorph.io import manga as manga_io
from specmorph.io.cubes import read_cube
from specmorph.io.manga import (
    CALIFA_GRID,
    DONOTUSE,
    FLUX_TO_CALIFA,
    channel_span,
    interpolate,
    is_logcube,
    linear_grid,
    logcube_name,
    read_drpall,
    read_logcube,
    select_drpall,
    vacuum_to_air,
)

N_WAVE, NY, NX = 4563, 3, 4
WAVE = 10 ** (np.log10(3621.6) + 1e-4 * np.arange(N_WAVE))  # DR17's log-λ vacuum grid, 3622-10354 Å


def _air_line(wave_vac: np.ndarray, a: float = 2.0, b: float = 1e-3) -> np.ndarray:
    """A spectrum linear in *air* wavelength, 1e-17 units: linear interpolation reproduces it exactly."""
    return a + b * vacuum_to_air(wave_vac)


def _write(path: Path, flux=None, ivar=None, mask=None, wave=WAVE, drop: tuple[str, ...] = ()) -> Path:
    shape = (len(wave), NY, NX)
    flux = np.broadcast_to(_air_line(wave)[:, None, None], shape).astype(np.float32) if flux is None else flux
    ivar = np.full(shape, 4.0, np.float32) if ivar is None else ivar  # sigma 0.5e-17
    mask = np.zeros(shape, np.int32) if mask is None else mask
    primary = fits.PrimaryHDU()
    primary.header.update({"PLATEIFU": "8485-1901", "OBJRA": 234.0660, "OBJDEC": 48.2910})
    hdus = [primary]
    for name, data in (("FLUX", flux), ("IVAR", ivar), ("MASK", mask), ("WAVE", np.asarray(wave, np.float64))):
        if name not in drop:
            hdu = fits.ImageHDU(data, name=name)
            if name == "FLUX":
                hdu.header["BUNIT"] = "1E-17 erg/s/cm^2/Ang/spaxel"
            hdus.append(hdu)
    fits.HDUList(hdus).writeto(path)
    return path


def test_names_and_the_vacuum_to_air_conversion():
    assert logcube_name("/a/manga-8485-1901-LOGCUBE.fits.gz") == "8485-1901"
    assert logcube_name("other.fits") == "other"
    assert is_logcube("/a/manga-8485-1901-LOGCUBE.fits.gz") and is_logcube("manga-7443-12703-LOGCUBE.fits")
    assert not is_logcube("NGC0001.V500.rscube.fits.gz") and not is_logcube("manga-8485-1901-MAPS.fits.gz")
    # Hα, [OIII] 5007, [OII] 3726: vacuum -> the air wavelengths of the line lists
    assert vacuum_to_air(np.array([6564.614, 5008.239, 3727.092])) == pytest.approx([6562.80, 5006.84, 3726.03],
                                                                                     abs=0.01)
    grid = linear_grid(*CALIFA_GRID)
    assert len(grid) == 1877 and grid[0] == 3749.0 and grid[-1] == 7501.0


def test_a_linear_spectrum_lands_on_the_califa_grid_in_califa_units(tmp_path):
    cube = read_logcube(_write(tmp_path / "manga-8485-1901-LOGCUBE.fits"))
    assert cube.name == "8485-1901" and (cube.ra, cube.dec) == (234.0660, 48.2910)
    assert cube.flux.shape == (1877, NY, NX) and cube.flux.dtype == np.float32
    np.testing.assert_array_equal(cube.wave, linear_grid(*CALIFA_GRID))
    expected = 0.1 * (2.0 + 1e-3 * cube.wave)  # 1e-17 -> 1e-16 erg/s/cm²/Å
    np.testing.assert_allclose(cube.flux[:, 1, 2], expected, rtol=1e-5)
    # sigma 0.5e-17 per pixel; interpolated with weights (1-w, w): sqrt((1-w)² + w²) × 0.05, in [0.035, 0.05]
    assert np.all((cube.error >= 0.05 / np.sqrt(2) - 1e-6) & (cube.error <= 0.05 + 1e-6))


def test_donotuse_and_zero_ivar_pixels_become_nan_only_where_they_are_used(tmp_path):
    mask = np.zeros((N_WAVE, NY, NX), np.int32)
    ivar = np.full((N_WAVE, NY, NX), 4.0, np.float32)
    k = int(np.searchsorted(vacuum_to_air(WAVE), 5500.0))  # a MaNGA pixel near 5500 Å (air)
    mask[k, 0, 0] = DONOTUSE | 1  # NOCOV and DONOTUSE
    mask[:, 0, 1] = 1 << 3  # FORESTAR alone is not a reason to drop a pixel here: DONOTUSE is
    ivar[:, 2, 3] = 0.0  # no measurement
    cube = read_logcube(_write(tmp_path / "c.fits", ivar=ivar, mask=mask))
    air = vacuum_to_air(WAVE)
    near = (cube.wave > air[k - 1]) & (cube.wave < air[k + 1])  # channels drawn from pixel k
    assert near.any() and np.isnan(cube.flux[near, 0, 0]).all() and np.isnan(cube.error[near, 0, 0]).all()
    assert np.isfinite(cube.flux[~near, 0, 0]).all()
    assert np.isfinite(cube.flux[:, 0, 1]).all()
    assert np.isnan(cube.flux[:, 2, 3]).all()


def test_channels_outside_mangas_range_are_nan(tmp_path):
    wave = WAVE[WAVE > 4000.0]  # a cube starting redwards of the grid's first channel
    cube = read_logcube(_write(tmp_path / "c.fits", wave=wave))
    below = cube.wave < vacuum_to_air(wave[0])
    assert below.any() and np.isnan(cube.flux[below]).all() and np.isfinite(cube.flux[~below]).all()


@pytest.mark.parametrize("ext", ["IVAR", "MASK", "WAVE"])
def test_a_missing_extension_is_named(tmp_path, ext):
    path = _write(tmp_path / "c.fits", drop=(ext,))
    with pytest.raises(InputError, match=re.escape(f"c.fits: not a MaNGA LOGCUBE: no {ext}")):
        read_logcube(path)


def test_bad_shapes_and_wavelengths_are_named(tmp_path):
    with pytest.raises(InputError, match="IVAR has shape"):
        read_logcube(_write(tmp_path / "a.fits", ivar=np.ones((N_WAVE, NY, NX + 1), np.float32)))
    with pytest.raises(InputError, match="WAVE must hold"):
        read_logcube(_write(tmp_path / "b.fits", wave=WAVE[::-1]))


def test_a_truncated_gzip_and_a_missing_file_are_named(tmp_path):
    plain = _write(tmp_path / "c.fits")
    packed = tmp_path / "manga-1-2-LOGCUBE.fits.gz"
    data = gzip.compress(plain.read_bytes())
    packed.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=re.escape("manga-1-2-LOGCUBE.fits.gz: corrupt or truncated gzip")):
        read_logcube(packed)
    with pytest.raises(InputError, match="cube file not found"):
        read_logcube(tmp_path / "absent.fits")


def _drpall(path: Path, rows: list[tuple], extra: dict | None = None, drop: str = "") -> Path:
    """A DRPall file as DR17 writes it: extension MANGA, upper-case FITS column names, big-endian numbers."""
    names = ("PLATEIFU", "MANGAID", "OBJRA", "OBJDEC", "NSA_Z", "DRP3QUAL", "REDSN2")
    cols = dict(zip(names, zip(*rows, strict=True), strict=True)) | (extra or {})
    table = Table({k: np.asarray(v) for k, v in cols.items() if k.lower() != drop})
    table["NSA_ELPETRO_FLUX"] = np.ones((len(rows), 7))  # an array column, as the NSA ones are
    hdu = fits.table_to_hdu(table)
    hdu.name = "MANGA"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path


ROWS = [("8485-1901", "1-209232", 232.544, 48.690, 0.0408, 0, 20.0),
        ("7443-12703", "12-193481", 229.525, 42.745, 0.0403, 1 << 30, 30.0),  # critical
        ("7443-3702", "1-1234", 230.5, 43.1, 0.03, 0, 10.0),
        ("9000-3702", "1-1234", 230.5, 43.1, 0.03, 1 << 6, 15.0)]  # the same galaxy again, better S/N


def test_drpall_is_read_with_its_columns_and_folded_to_one_usable_cube_per_galaxy(tmp_path):
    df = read_drpall(_drpall(tmp_path / "drpall-v3_1_1.fits", ROWS))
    assert list(df["plateifu"]) == ["8485-1901", "7443-12703", "7443-3702", "9000-3702"]
    assert df["ra"].iloc[0] == pytest.approx(232.544) and df["redshift"].iloc[1] == pytest.approx(0.0403)
    assert df["drp3qual"].dtype == np.int64 and "nsa_elpetro_flux" not in df.columns
    kept, dropped = select_drpall(df)
    assert list(kept["plateifu"]) == ["8485-1901", "9000-3702"]  # the repeat with the higher redsn2
    assert dict(zip(dropped["plateifu"], dropped["reason"], strict=True)) == {
        "7443-12703": "DRP3QUAL CRITICAL (bit 30)",
        "7443-3702": "repeat observation of MaNGA ID 1-1234 (kept 9000-3702)"}
    without_sn = select_drpall(df.drop(columns=["redsn2"]))[0]
    assert list(without_sn["plateifu"]) == ["8485-1901", "7443-3702"]  # else the first in the table


@pytest.mark.parametrize(("rows", "drop", "message"), [
    (ROWS, "nsa_z", r"column\(s\) nsa_z missing in the DRPall table"),
    ([*ROWS[:1], ("8485-1901", *ROWS[2][1:])], "", "row 2: plateifu 8485-1901 repeated"),
    ([*ROWS[:1], ("7443-3702", "1-1234", float("nan"), 43.1, 0.03, 0, 1.0)], "",
     r"row 2 \(plateifu 7443-3702\): objra=nan is not a position"),
    ([*ROWS[:1], ("7443-3702", "1-1234", 230.5, 95.0, 0.03, 0, 1.0)], "", "objdec=95.0 is not a position"),
    ([*ROWS[:1], ("7443-3702", " ", 230.5, 43.1, 0.03, 0, 1.0)], "", "row 2: empty mangaid"),
    ([*ROWS[:1], ("7443-3702", "1-1234", 230.5, 43.1, 0.03, -1, 1.0)], "", "drp3qual=-1 is not a quality bitmask"),
])
def test_a_bad_drpall_table_names_the_file_and_row_or_column(tmp_path, rows, drop, message):
    path = _drpall(tmp_path / "drpall.fits", rows, drop=drop)
    with pytest.raises(InputError, match=message) as err:
        read_drpall(path)
    assert str(path) in str(err.value)


def test_a_file_that_is_not_a_drpall_table_is_refused(tmp_path):
    image = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((2, 2))).writeto(image)
    with pytest.raises(InputError, match="no binary table extension"):
        read_drpall(image)
    with pytest.raises(InputError, match="not found"):
        read_drpall(tmp_path / "none.fits")
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(_drpall(tmp_path / "whole.fits", ROWS).read_bytes()[:4000])
    with pytest.raises(InputError, match=r"truncated\.fits"):
        read_drpall(truncated)


def test_read_cube_reads_a_logcube_as_read_logcube_does(tmp_path):
    """The stages read cubes through io.cubes.read_cube, which takes a LOGCUBE by its name."""
    path = _write(tmp_path / "manga-8485-1901-LOGCUBE.fits")
    direct, dispatched = read_logcube(path), read_cube(path)
    assert dispatched.name == direct.name == "8485-1901"
    np.testing.assert_array_equal(dispatched.flux, direct.flux)
    np.testing.assert_array_equal(dispatched.error, direct.error)
    assert read_cube(path, error=False).error is None


def test_reading_only_the_channels_the_grid_needs_gives_what_the_whole_cube_gives(tmp_path):
    """read_logcube slices the cube to `channel_span` first; the same resampling of every channel agrees exactly."""
    rng = np.random.default_rng(5)
    shape = (N_WAVE, NY, NX)
    flux = rng.normal(3.0, 1.0, shape).astype(np.float32)
    ivar = rng.uniform(0.5, 4.0, shape).astype(np.float32)
    mask = np.where(rng.uniform(size=shape) < 0.05, DONOTUSE, 0).astype(np.int32)
    cube = read_logcube(_write(tmp_path / "c.fits", flux=flux, ivar=ivar, mask=mask))
    good = ((mask & DONOTUSE) == 0) & (ivar > 0)
    whole, var, usable = interpolate(vacuum_to_air(WAVE), linear_grid(*CALIFA_GRID), flux, good,
                                     1.0 / ivar.astype(np.float64))
    np.testing.assert_array_equal(cube.flux, (np.where(usable, whole, np.nan) * FLUX_TO_CALIFA).astype(np.float32))
    np.testing.assert_array_equal(cube.error,
                                  (np.sqrt(np.where(usable, var, np.nan)) * FLUX_TO_CALIFA).astype(np.float32))
    span = channel_span(vacuum_to_air(WAVE), linear_grid(*CALIFA_GRID))
    assert 0 < span.start and span.stop < N_WAVE and span.stop - span.start < 0.7 * N_WAVE


@pytest.mark.parametrize("suffix", [".fits", ".fits.gz"])
def test_the_one_pass_read_gives_what_astropy_gives(tmp_path, suffix, monkeypatch):
    """read_logcube reads through `gzipfits` (one pass) where it can; forced onto astropy, the same cube."""
    rng = np.random.default_rng(8)
    shape = (N_WAVE, NY, NX)
    plain = _write(tmp_path / "manga-1-1901-LOGCUBE.fits", flux=rng.normal(3, 1, shape).astype(np.float32),
                   ivar=rng.uniform(0.5, 4, shape).astype(np.float32),
                   mask=np.where(rng.uniform(size=shape) < 0.05, DONOTUSE, 0).astype(np.int32))
    path = tmp_path / f"manga-8485-1901-LOGCUBE{suffix}"
    path.write_bytes(gzip.compress(plain.read_bytes()) if suffix.endswith(".gz") else plain.read_bytes())
    assert set(gzipfits.read_images(path, manga_io.EXTENSIONS)[2]) == set(manga_io.EXTENSIONS)  # the one pass reads it
    fast = read_logcube(path)

    def refuse(*args, **kwargs):
        raise gzipfits.Unsupported("forced onto astropy")

    monkeypatch.setattr(gzipfits, "read_images", refuse)
    slow = read_logcube(path)
    np.testing.assert_array_equal(fast.flux, slow.flux)
    np.testing.assert_array_equal(fast.error, slow.error)
    assert fast.header == slow.header and (fast.ra, fast.dec) == (slow.ra, slow.dec)
