"""Tests of the MaNGA LOGCUBE reader on small files in the DR17 format (FLUX, IVAR, MASK, WAVE extensions)."""

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from specmorph.errors import InputError
from specmorph.io.manga import (
    CALIFA_GRID,
    DONOTUSE,
    linear_grid,
    logcube_name,
    read_logcube,
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
