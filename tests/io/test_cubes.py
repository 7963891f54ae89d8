"""Tests for the V500 cube reader and the normalised galaxy spectra built from it."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from specmorph.errors import InputError
from specmorph.io import cubes, gzipfits
from specmorph.io.cubes import galaxy_spectrum, iter_spectra, read_cube
from specmorph.io.gzipfits import read_images
from specmorph.sky.cube import build_cube, write_cube
from specmorph.sky.population import draw_galaxy

N_WAVE, NY, NX = 950, 9, 9  # 3749-5647 Å: covers the 5450-5550 Å normalisation window
REAL_SPECTRUM = Path(__file__).resolve().parents[3] / "shared/data/califa_spectrum/integ_3D.fits"


def _wave() -> np.ndarray:
    return 3749.0 + 2.0 * np.arange(N_WAVE)  # Å


def _spectrum(slope: float = 1.0) -> np.ndarray:
    """A sloped continuum with an emission line at 5000 Å, 1e-16 erg/s/cm²/Å per unit image."""
    w = _wave()
    return (1.0 + slope * (w - 3749.0) / 2000.0 + 3.0 * np.exp(-0.5 * ((w - 5000.0) / 4.0) ** 2)).astype(np.float32)


def _image(cy: int = 4, cx: int = 4) -> np.ndarray:
    """An exponential disc (ny, nx) inside a round footprint (NaN outside, like the PPAK hexagon)."""
    y, x = np.mgrid[:NY, :NX]
    img = np.exp(-np.hypot(y - cy, x - cx) / 2.0).astype(np.float32)
    img[np.hypot(y - 4, x - 4) > 4.2] = np.nan
    return img


def _header(drop: tuple[str, ...] = ()) -> fits.Header:
    h = fits.Header()
    for key, value in {
        "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CTYPE3": "AWAV", "CUNIT1": "deg", "CUNIT2": "deg",
        "CUNIT3": "Angstrom", "CRVAL1": 232.65248, "CRVAL2": 42.717148, "CRVAL3": 3749.0,
        "CRPIX1": 5.0, "CRPIX2": 5.0, "CRPIX3": 1.0, "CDELT1": -1 / 3600, "CDELT2": 1 / 3600, "CDELT3": 2.0,
        "OBJECT": "MOCK0001", "MED_VEL": 5937.6, "BUNIT": "1E-16 erg/s/cm^2/A",
    }.items():
        if key not in drop:
            h[key] = value
    return h


def _write(path: Path, flux: np.ndarray, badpix: np.ndarray | None = None, header: fits.Header | None = None,
           with_badpix: bool = True) -> Path:
    if badpix is None:
        badpix = ~np.isfinite(flux)
    hdus = [fits.PrimaryHDU(flux.astype(np.float32), header=header or _header()),
            fits.ImageHDU(np.abs(flux).astype(np.float32) * 0.05, name="ERROR")]
    if with_badpix:
        hdus.append(fits.ImageHDU(badpix.astype(np.uint8), name="BADPIX"))
    fits.HDUList(hdus).writeto(path)
    return path


def _cube_path(tmp_path: Path, name: str = "MOCK0001", scale: float = 1.0, **kwargs) -> Path:
    flux = scale * _spectrum()[:, None, None] * _image()[None]  # (n_wave, ny, nx)
    return _write(tmp_path / f"{name}.V500.rscube.fits.gz", flux, **kwargs)


def test_read_cube_wave_axis_and_metadata(tmp_path):
    cube = read_cube(_cube_path(tmp_path))
    np.testing.assert_array_equal(cube.wave, 3749.0 + 2.0 * np.arange(N_WAVE))
    assert cube.flux.shape == (N_WAVE, NY, NX) and cube.flux.dtype == np.float32
    assert cube.error is not None and cube.error.shape == cube.flux.shape
    assert cube.name == "MOCK0001" and cube.header["MED_VEL"] == 5937.6
    assert (cube.ra, cube.dec) == pytest.approx((232.65248, 42.717148))


def test_cd3_3_and_other_reference_pixel_give_the_same_axis(tmp_path):
    header = _header(drop=("CDELT3", "CRVAL3", "CRPIX3"))
    header["CD3_3"], header["CRPIX3"], header["CRVAL3"] = 2.0, 11.0, 3769.0
    flux = _spectrum()[:, None, None] * _image()[None]
    cube = read_cube(_write(tmp_path / "CD.fits", flux, header=header))
    np.testing.assert_allclose(cube.wave, 3749.0 + 2.0 * np.arange(N_WAVE))


def test_badpix_spaxels_become_nan(tmp_path):
    flux = _spectrum()[:, None, None] * _image()[None]
    badpix = ~np.isfinite(flux)
    badpix[10, 3, 4] = True
    badpix[:, 4, 6] = True
    cube = read_cube(_write(tmp_path / "B.fits.gz", flux, badpix=badpix))
    assert np.isnan(cube.flux[10, 3, 4]) and np.isnan(cube.flux[:, 4, 6]).all()
    assert np.isnan(cube.error[10, 3, 4])
    assert np.isnan(cube.flux[:, 0, 0]).all()  # outside the footprint
    good = ~badpix
    np.testing.assert_array_equal(cube.flux[good], flux[good])
    assert np.isnan(cube.flux).sum() == badpix.sum()


def test_missing_badpix_warns_and_masks_nan(tmp_path, caplog):
    path = _cube_path(tmp_path, with_badpix=False)
    with caplog.at_level(logging.WARNING, logger="specmorph.io.cubes"):
        cube = read_cube(path)
    assert "BADPIX" in caplog.text and path.name in caplog.text
    assert np.isnan(cube.flux[:, 0, 0]).all() and np.isfinite(cube.flux[:, 4, 4]).all()


@pytest.mark.parametrize("key", ["CRVAL3", "CDELT3"])
def test_cube_without_wavelength_wcs_names_file_and_keyword(tmp_path, key):
    path = _cube_path(tmp_path, header=_header(drop=(key,)))
    with pytest.raises(InputError, match=key) as err:
        read_cube(path)
    assert path.name in str(err.value)


@pytest.mark.parametrize("keep", [0.5, 0.9999])  # 0.9999 loses only the gzip trailer and BADPIX's tail
def test_truncated_gzip_names_the_file(tmp_path, keep):
    path = _cube_path(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(InputError, match="truncated") as err:
        read_cube(path)
    assert "MOCK0001.V500.rscube.fits.gz" in str(err.value)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(InputError, match=r"NOPE\.V500"):
        read_cube(tmp_path / "NOPE.V500.rscube.fits.gz")


def test_integrated_spectrum_recovers_shape_despite_bad_pixels(tmp_path):
    flux = _spectrum()[:, None, None] * _image()[None]
    badpix = ~np.isfinite(flux)
    badpix[100:300, 4, 4] = True  # the brightest spaxel loses 200 channels
    wave, spec = galaxy_spectrum(read_cube(_write(tmp_path / "C.fits", flux, badpix=badpix)))
    s = _spectrum()
    expected = s / np.median(s[(_wave() >= 5450) & (_wave() <= 5550)])
    np.testing.assert_allclose(spec, expected, rtol=1e-5)
    in_norm = (wave >= 5450) & (wave <= 5550)
    assert np.median(spec[in_norm]) == pytest.approx(1.0)


def test_central_aperture_uses_the_3x3_box_around_the_peak(tmp_path):
    flux = _spectrum(slope=1.0)[:, None, None] * _image(cy=3, cx=5)[None]
    flux[:, 2:5, 4:7] = 3 * _spectrum(slope=-0.3)[:, None, None] * _image(cy=3, cx=5)[None, 2:5, 4:7]
    _, central = galaxy_spectrum(read_cube(_write(tmp_path / "P.fits", flux)), aperture="central")
    s = _spectrum(slope=-0.3)
    np.testing.assert_allclose(central, s / np.median(s[(_wave() >= 5450) & (_wave() <= 5550)]), rtol=1e-5)


def test_window_and_binning_shapes(tmp_path):
    cube = read_cube(_cube_path(tmp_path))
    wave, spec = galaxy_spectrum(cube, window=(4000.0, 5000.0))
    assert wave[0] == 4001.0 and wave[-1] == 4999.0 and spec.shape == (500,)
    wave4, spec4 = galaxy_spectrum(cube, window=(4000.0, 5000.0), bin_factor=4)
    assert spec4.shape == (125,) and spec4.dtype == np.float32
    assert wave4[0] == pytest.approx(4004.0)
    np.testing.assert_allclose(spec4, spec.reshape(-1, 4).mean(axis=1), rtol=1e-6)
    _, spec3 = galaxy_spectrum(cube, bin_factor=3)
    assert spec3.shape == (N_WAVE // 3,)


def test_bad_window_and_aperture_are_rejected(tmp_path):
    cube = read_cube(_cube_path(tmp_path))
    with pytest.raises(InputError, match="outside"):
        galaxy_spectrum(cube, window=(8000.0, 9000.0))
    with pytest.raises(ValueError, match="aperture"):
        galaxy_spectrum(cube, aperture="nuclear")


@pytest.mark.parametrize("aperture", ["integrated", "central"])
def test_normalisation_removes_a_flux_scale(tmp_path, aperture):
    near = read_cube(_cube_path(tmp_path, "NEAR", scale=10.0))
    far = read_cube(_cube_path(tmp_path, "FAR", scale=1.0))
    _, a = galaxy_spectrum(near, aperture=aperture, bin_factor=2)
    _, b = galaxy_spectrum(far, aperture=aperture, bin_factor=2)
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_iter_spectra_reads_one_cube_per_step(tmp_path, monkeypatch):
    calls = []
    real_read = cubes.read_cube
    monkeypatch.setattr(cubes, "read_cube", lambda p, **kw: calls.append(p) or real_read(p, **kw))
    paths = [_cube_path(tmp_path, "A"), tmp_path / "MISSING.V500.rscube.fits.gz"]
    spectra = iter_spectra(paths, window=(4000.0, 5000.0), progress=False)
    assert calls == []  # nothing read until asked
    name, wave, spec = next(spectra)
    assert name == "A" and wave.shape == spec.shape == (500,) and len(calls) == 1
    with pytest.raises(InputError, match="MISSING"):
        next(spectra)


def test_one_dimensional_spectrum_with_stale_sky_unit(tmp_path):
    h = fits.Header()
    h["CRVAL1"], h["CDELT1"], h["CRPIX1"], h["CUNIT1"] = 3749.0, 2.0, 1.0, "deg"  # as in real CALIFA 1-D files
    h["RA"], h["DEC"] = 10.0, -5.0
    fits.PrimaryHDU(_spectrum(), header=h).writeto(tmp_path / "S.fits")
    cube = read_cube(tmp_path / "S.fits")
    assert cube.flux.shape == (N_WAVE, 1, 1) and (cube.ra, cube.dec) == (10.0, -5.0)
    np.testing.assert_array_equal(cube.wave, _wave())
    _, spec = galaxy_spectrum(cube, aperture="central")
    np.testing.assert_allclose(spec * np.median(_spectrum()[(_wave() >= 5450) & (_wave() <= 5550)]), _spectrum(),
                               rtol=1e-5)


@pytest.mark.skipif(not REAL_SPECTRUM.is_file(), reason="real CALIFA reference data not available")
def test_real_califa_integrated_spectrum(monkeypatch):
    calls = _astropy_calls(monkeypatch)
    cube = read_cube(REAL_SPECTRUM)
    assert calls == [] and cube.header.tostring() == fits.getheader(REAL_SPECTRUM).tostring()
    assert cube.wave[0] == 3749.0 and cube.wave[-1] == 7501.0 and cube.flux.shape == (1877, 1, 1)
    assert (cube.ra, cube.dec) == pytest.approx((232.65248, 42.717148))
    wave, spec = galaxy_spectrum(cube)
    assert np.nanmedian(spec[(wave >= 5450) & (wave <= 5550)]) == pytest.approx(1.0)
    assert np.nanmax(spec[(wave > 6650) & (wave < 6720)]) > 1.2  # Hα+[N II] at z ≈ 0.02


@pytest.mark.parametrize(("file_name", "name"), [
    ("NGC5947.V500.rscube.fits.gz", "NGC5947"),
    ("SDSSJ100141.02+371447.4.V500.rscube.fits.gz", "SDSSJ100141.02+371447.4"),
    ("UGC00005.COMB.rscube.fits", "UGC00005"),
    ("MOCK0001.fits.gz", "MOCK0001"),
])
def test_cube_name_keeps_dots_inside_the_galaxy_name(file_name, name):
    from specmorph.io.cubes import cube_name

    assert cube_name(Path(file_name)) == name


@pytest.fixture(scope="module")
def mock_cube(tmp_path_factory) -> Path:
    """A small full-wavelength cube written by the mock survey in the eCALIFA format (gzip)."""
    g = draw_galaxy(np.random.default_rng(0), "MOCK0042", 150.25, 30.5, 0.0237, hubtyp="Sb")
    path = tmp_path_factory.mktemp("ecalifa") / "MOCK0042.V500.rscube.fits.gz"
    write_cube(path, g, *build_cube(g, 1877, 15, 13, rng=np.random.default_rng(1)))
    return path


def _astropy_reference(path: Path) -> tuple[fits.Header, np.ndarray, np.ndarray | None]:
    """Primary header, flux and error as plain astropy reads them, NaN where BADPIX or not finite."""
    with fits.open(path) as hdul:
        header = hdul[0].header.copy()
        flux = np.array(hdul[0].data if hdul[0].data is not None else hdul["FLUX"].data, dtype=np.float32)
        error = np.array(hdul["ERROR"].data, dtype=np.float32) if "ERROR" in hdul else None
        bad = (np.array(hdul["BADPIX"].data) != 0) | ~np.isfinite(flux)
    flux[bad] = np.nan
    if error is not None:
        error[bad] = np.nan
    return header, flux, error


def _assert_same_bits(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _astropy_calls(monkeypatch) -> list[Path]:
    """Records each file that read_cube hands to the astropy reader."""
    calls: list[Path] = []
    real = cubes._read_astropy
    monkeypatch.setattr(cubes, "_read_astropy", lambda path, error: calls.append(path) or real(path, error))
    return calls


@pytest.mark.parametrize("plain", [False, True])
def test_streamed_read_is_bit_identical_to_astropy(mock_cube, tmp_path, monkeypatch, plain):
    path = mock_cube
    if plain:
        path = tmp_path / "MOCK0042.V500.rscube.fits"
        path.write_bytes(gzip.decompress(mock_cube.read_bytes()))
    calls = _astropy_calls(monkeypatch)
    cube = read_cube(path)
    header, flux, error = _astropy_reference(path)
    assert calls == []  # streamed, not read by astropy
    assert cube.header.tostring() == header.tostring() and list(cube.header.items()) == list(header.items())
    assert [c.comment for c in cube.header.cards] == [c.comment for c in header.cards]
    _assert_same_bits(cube.flux, flux)
    _assert_same_bits(cube.error, error)
    assert 0 < np.isnan(flux).sum() < flux.size and cube.flux.flags.writeable and cube.flux.flags.c_contiguous
    assert cube.name == "MOCK0042" and (cube.ra, cube.dec) == (header["CRVAL1"], header["CRVAL2"])
    without_error = read_cube(path, error=False)
    assert without_error.error is None
    _assert_same_bits(without_error.flux, flux)


def test_chunk_boundaries_anywhere_give_the_same_arrays(mock_cube, monkeypatch):
    header, flux, error = _astropy_reference(mock_cube)
    monkeypatch.setattr(gzipfits, "_READ", 4093)  # compressed bytes per read
    monkeypatch.setattr(gzipfits, "_INFLATE", 997)  # splits elements and header cards between chunks
    cube = read_cube(mock_cube)
    assert cube.header.tostring() == header.tostring()
    _assert_same_bits(cube.flux, flux)
    _assert_same_bits(cube.error, error)


def test_read_images_keeps_only_the_named_extensions(mock_cube):
    header, data, found = read_images(mock_cube, ("BADPIX", "FIBCOVER"))
    with fits.open(mock_cube) as hdul:
        assert data.dtype == np.float32 and data.tobytes() == hdul[0].data.astype(np.float32).tobytes()
        assert list(found) == ["BADPIX"] and np.array_equal(found["BADPIX"], hdul["BADPIX"].data)
    assert header["NAXIS3"] == 1877


def test_first_extension_of_a_name_is_read_whatever_its_case(tmp_path, monkeypatch):
    flux = _spectrum()[:, None, None] * _image()[None]
    hdus = [fits.PrimaryHDU(flux, header=_header()), fits.ImageHDU(np.ones_like(flux), name="FIBCOVER"),
            fits.ImageHDU(flux * 0.1), fits.ImageHDU(flux * 0.05), fits.ImageHDU(flux * 0.2, name="ERROR"),
            fits.ImageHDU((~np.isfinite(flux)).astype(np.int16), name="BADPIX")]
    hdus[3].header["EXTNAME"] = " error"  # astropy matches names stripped and upper-cased
    path = tmp_path / "X.fits.gz"
    fits.HDUList(hdus).writeto(path)
    calls = _astropy_calls(monkeypatch)
    cube = read_cube(path)
    _, ref_flux, ref_error = _astropy_reference(path)
    assert calls == []
    _assert_same_bits(cube.flux, ref_flux)
    _assert_same_bits(cube.error, ref_error)
    np.testing.assert_allclose(cube.error[np.isfinite(cube.error)], 0.05 * ref_flux[np.isfinite(ref_flux)])


def _multi_member(data: bytes) -> bytes:
    raw = gzip.decompress(data)
    return gzip.compress(raw[:100_000]) + gzip.compress(raw[100_000:])


@pytest.mark.parametrize("rewrite", [
    _multi_member,  # concatenated gzip streams
    lambda data: data + bytes(64),  # zero padding after the stream
    lambda data: gzip.compress(gzip.decompress(data) + bytes(2880)),  # an empty block after the last HDU
    lambda data: gzip.compress(gzip.decompress(data).replace(b"EXTEND  =                    T",
                                                             b"EXTEND  =                    F", 1)),
    lambda data: gzip.compress(gzip.decompress(data).replace(b"EXTEND  =                    T",
                                                             b"COMMENT                       ", 1)),
])
def test_files_the_stream_declines_are_read_by_astropy(mock_cube, tmp_path, monkeypatch, rewrite):
    path = tmp_path / mock_cube.name
    path.write_bytes(rewrite(mock_cube.read_bytes()))
    calls = _astropy_calls(monkeypatch)
    cube = read_cube(path)
    header, flux, error = _astropy_reference(path)
    assert calls == [path]
    assert cube.header.tostring() == header.tostring() and header["EXTEND"] is True  # astropy sets it
    _assert_same_bits(cube.flux, flux)
    _assert_same_bits(cube.error, error)


def test_scaled_data_and_flux_extension_are_read_by_astropy(tmp_path, monkeypatch):
    flux = _spectrum()[:, None, None] * _image()[None]
    scaled = fits.PrimaryHDU(np.nan_to_num(flux * 1000).astype(np.int16), header=_header())
    scaled.header["BSCALE"], scaled.header["BZERO"] = 1e-3, 0.5
    fits.HDUList([scaled, fits.ImageHDU((~np.isfinite(flux)).astype(np.uint8), name="BADPIX")]).writeto(
        tmp_path / "S.fits.gz")
    fits.HDUList([fits.PrimaryHDU(header=_header()), fits.ImageHDU(flux, header=_header(), name="FLUX"),
                  fits.ImageHDU((~np.isfinite(flux)).astype(np.uint8), name="BADPIX")]).writeto(tmp_path / "F.fits")
    calls = _astropy_calls(monkeypatch)
    for name in ("S.fits.gz", "F.fits"):
        cube = read_cube(tmp_path / name)
        _assert_same_bits(cube.flux, _astropy_reference(tmp_path / name)[1])
    assert [p.name for p in calls] == ["S.fits.gz", "F.fits"]


@pytest.mark.parametrize("damage", [
    lambda raw: raw[:-3 * 2880],  # data shorter than the header says
    lambda raw: raw.replace(b"NAXIS3  =                 1877", b"NAXIS3  =            999999999", 1),
])
def test_fits_damage_inside_a_sound_gzip_stream_is_reported_as_by_astropy(mock_cube, tmp_path, damage):
    path = tmp_path / mock_cube.name
    raw = gzip.decompress(mock_cube.read_bytes())
    path.write_bytes(gzip.compress(damage(raw), compresslevel=1))
    with pytest.raises(InputError, match="not a readable FITS file") as err:
        read_cube(path)
    with pytest.raises(InputError) as astropy_err:
        cubes._read_astropy(path, error=True)
    assert str(err.value) == str(astropy_err.value) and str(path) in str(err.value)


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1:]


@pytest.mark.parametrize(("damage", "message"), [
    (lambda d: _flip(d, len(d) - 6), "CRC check failed"),  # stored CRC-32
    (lambda d: _flip(d, len(d) // 2), "corrupt"),  # inside the deflate stream
    (lambda d: d[:-4] + (int.from_bytes(d[-4:], "little") + 2880).to_bytes(4, "little"), "Incorrect length"),
    (lambda d: d[:-4] + (2**32 - 1).to_bytes(4, "little"), "Incorrect length"),  # absurd ISIZE
    (lambda d: gzip.decompress(d), "Not a gzipped file"),  # plain FITS named .gz
    (lambda d: d[:10], "truncated"),  # the gzip header alone
])
def test_damaged_gzip_raises_input_error_naming_the_file(mock_cube, tmp_path, damage, message):
    path = tmp_path / mock_cube.name
    path.write_bytes(damage(mock_cube.read_bytes()))
    with pytest.raises(InputError, match=message) as err:
        read_cube(path)
    assert str(path) in str(err.value) and "corrupt or truncated gzip file" in str(err.value)
