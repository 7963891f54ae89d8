"""Tests of the mock eCALIFA V500 cubes (sky.cube) and the analytic spectra behind them (sky.spectra)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

from specmorph.sky import cube, spectra
from specmorph.sky.truth import GalaxyTruth

HA = spectra.LINES["Halpha"]  # Å, air
SPIRAL = GalaxyTruth(
    id_str="MOCK0042", ra=150.25, dec=30.5, redshift=0.0237, label=7, galaxy10=6, hubtyp="Sb",
    mag_r=13.0, bulge_frac=0.2, bulge_n=2.5, bulge_re=2.0, bulge_q=0.8, disc_h=5.0, disc_q=0.5,
    inclination=60.0, pa=30.0, bar_strength=0.0, bar_length=0.0, n_arms=2, pitch=15.0, arm_strength=0.4,
    dust_lane=0.0, bulge_gr=0.8, disc_gr=0.5, age_bulge=8.0, age_disc=2.0, ew_ha=20.0, log_nii_ha=-0.4,
    log_oiii_hb=-0.3, av=0.4, v_rot=200.0, sigma=90.0,
)
ELLIPTICAL = dataclasses.replace(
    SPIRAL, hubtyp="E3", label=5, bulge_frac=1.0, bulge_n=4.0, bulge_re=5.0, bulge_q=0.7, disc_h=0.0,
    disc_q=0.7, inclination=0.0, n_arms=0, arm_strength=0.0, age_bulge=4.0, age_disc=4.0, ew_ha=0.4,
    log_nii_ha=0.2, log_oiii_hb=0.1, av=0.15, v_rot=0.0, sigma=220.0,
)


def galaxy(base: GalaxyTruth = SPIRAL, **changes) -> GalaxyTruth:
    """A test galaxy: `base` with some fields changed."""
    return dataclasses.replace(base, **changes)


def build(g: GalaxyTruth, n: int = 25, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A full-wavelength n×n cube."""
    return cube.build_cube(g, 1877, n, n, rng=np.random.default_rng(seed))


def integrated(flux: np.ndarray, badpix: np.ndarray) -> np.ndarray:
    """Sum over good spaxels, with bad channels interpolated over."""
    spec = np.where(badpix == 0, flux, 0).sum(axis=(1, 2))
    good = (badpix == 0).any(axis=(1, 2))
    idx = np.arange(len(spec))
    return np.interp(idx, idx[good], spec[good])


def band(wave: np.ndarray, spec: np.ndarray, lo: float, hi: float) -> float:
    """Mean of `spec` over lo-hi Å."""
    return float(np.mean(spec[(wave >= lo) & (wave <= hi)]))


def halpha_ew(wave_rest: np.ndarray, spec: np.ndarray) -> float:
    """Rest-frame Hα emission EW (Å, positive = emission) against the 6490-6530/6600-6640 Å continuum."""
    cont = 0.5 * (band(wave_rest, spec, 6490, 6530) + band(wave_rest, spec, 6600, 6640))
    win = np.abs(wave_rest - HA) <= 8
    return float(np.sum(spec[win] - cont) * np.mean(np.diff(wave_rest)) / cont)


def halpha_centroid(wave: np.ndarray, spec: np.ndarray, z: float) -> float:
    """Iterated flux-weighted centroid (Å) of the continuum-subtracted Hα line."""
    centre = HA * (1 + z)
    cont = 0.5 * (band(wave, spec, centre - 60, centre - 40) + band(wave, spec, centre + 40, centre + 60))
    for _ in range(5):
        win = np.abs(wave - centre) <= 6
        line = np.clip(spec[win] - cont, 0, None)
        centre = float(np.sum(line * wave[win]) / np.sum(line))
    return centre


def test_written_file_has_the_ecalifa_format(tmp_path):
    flux, error, badpix = cube.build_cube(SPIRAL, 1877, 15, 13, rng=np.random.default_rng(1))
    path = tmp_path / "MOCK0042.V500.rscube.fits.gz"
    cube.write_cube(path, SPIRAL, flux, error, badpix)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "ERROR", "BADPIX"]
        data, h = hdul[0].data, hdul[0].header
        assert data.shape == (1877, 13, 15) and data.dtype.kind == "f" and data.dtype.itemsize == 4
        assert hdul["ERROR"].data.shape == data.shape and hdul["ERROR"].data.dtype.itemsize == 4
        assert hdul["BADPIX"].data.dtype == np.uint8
        np.testing.assert_array_equal(hdul["BADPIX"].data, badpix)
        assert (h["CRVAL3"], h["CDELT3"], h["CRPIX3"], h["CTYPE3"]) == (3749, 2, 1, "AWAV")
        assert h["OBJECT"] == "MOCK0042" and h["CALIFAID"] == 42
        assert h["MED_VEL"] == pytest.approx(spectra.C_KMS * SPIRAL.redshift)
        centre = WCS(h).celestial.pixel_to_world(15 // 2, 13 // 2)
        assert centre.separation(SkyCoord(SPIRAL.ra, SPIRAL.dec, unit="deg")).arcsec < 0.1
        east = WCS(h).celestial.pixel_to_world(15 // 2 - 1, 13 // 2)  # one spaxel to -x is east
        assert east.ra.deg > SPIRAL.ra
        good = badpix == 0
        # Quantisation keeps flux within σ/16·√2/2 and σ within 0.2 %.
        assert np.all(np.abs(data[good] - flux[good]) <= error[good] / 16 * 0.71 + 1e-7)
        np.testing.assert_allclose(hdul["ERROR"].data[good], error[good], rtol=2e-3)


def test_halpha_lands_at_the_redshifted_wavelength():
    flux, _, badpix = build(SPIRAL)
    wave = cube.wavelengths(1877)
    spec = cube.central_spectrum(flux, badpix)
    win = np.abs(wave - HA * (1 + SPIRAL.redshift)) < 15
    assert abs(wave[win][np.argmax(spec[win])] - HA * (1 + SPIRAL.redshift)) <= cube.CDELT3


@pytest.mark.parametrize("pa", [30.0, 120.0])
def test_receding_side_is_towards_pa_with_projected_amplitude(pa):
    g = galaxy(pa=pa)
    flux, _, _ = build(g, n=29)
    wave = cube.wavelengths(1877)
    radius = 8.0  # arcsec along the major axis, where tanh(R / r_t) ≈ 1
    dx, dy = -np.sin(np.radians(pa)) * radius, np.cos(np.radians(pa)) * radius  # east is -x
    c = 29 // 2
    near = [flux[:, round(c + sgn * dy) - 1:round(c + sgn * dy) + 2, round(c + sgn * dx) - 1:round(c + sgn * dx) + 2]
            .mean(axis=(1, 2)) for sgn in (1, -1)]
    lam_rec, lam_app = (halpha_centroid(wave, s, g.redshift) for s in near)
    assert lam_rec > lam_app
    amplitude = (lam_rec - lam_app) / 2 / (HA * (1 + g.redshift)) * spectra.C_KMS  # km/s
    assert amplitude == pytest.approx(g.v_rot * np.sin(np.radians(g.inclination)), rel=0.2)


def test_elliptical_has_no_significant_halpha_but_spiral_does():
    wave = cube.wavelengths(1877)
    ews = {}
    for name, g in (("spiral", SPIRAL), ("elliptical", ELLIPTICAL)):
        flux, _, badpix = build(g)
        ews[name] = halpha_ew(wave / (1 + g.redshift), integrated(flux, badpix))
    assert ews["spiral"] > 8.0
    assert abs(ews["elliptical"]) < 1.5


def test_d4000_grows_with_age():
    wave = np.arange(3700.0, 4200.0, 0.5)
    d_young = spectra.d4000(wave, spectra.young_population(wave, 0.1))
    d_old = [spectra.d4000(wave, spectra.old_population(wave, age, 200.0)) for age in (1.0, 3.0, 10.0)]
    assert d_young < 1.2 < d_old[0] < d_old[1] < d_old[2]
    assert 1.8 < d_old[2] < 2.2  # massive ellipticals, Kauffmann et al. (2003)
    # In the cubes: the elliptical's integrated break is stronger than the star-forming spiral's.
    breaks = []
    for g in (ELLIPTICAL, SPIRAL):
        flux, _, badpix = build(g)
        breaks.append(spectra.d4000(cube.wavelengths(1877) / (1 + g.redshift), integrated(flux, badpix)))
    assert breaks[0] > breaks[1] + 0.2


def test_dusty_edge_on_disc_is_redder():
    wave = cube.wavelengths(1877)
    colours = []
    for av, lane in ((0.0, 0.0), (1.8, 0.7)):
        flux, _, badpix = build(galaxy(inclination=88.0, disc_q=0.15, av=av, dust_lane=lane))
        spec = integrated(flux, badpix)
        colours.append(band(wave, spec, 6200, 6600) / band(wave, spec, 4300, 4700))
    assert colours[1] > 1.3 * colours[0]
    trans = spectra.dust_attenuation(np.array([4000.0, 5500.0, 7000.0]), 1.0)
    assert trans[0] < trans[1] < trans[2] and trans[1] == pytest.approx(10**-0.4, rel=0.02)


def test_emission_line_fluxes_follow_case_b_and_dust():
    wave = np.arange(3600.0, 7000.0, 0.25)

    def flux_near(spec: np.ndarray, centre: float) -> float:
        return float(np.sum(spec[np.abs(wave - centre) < 6]) * 0.25)

    free = spectra.emission_lines(wave, 5.0, -0.4, -0.3, 20.0, 1.0)
    fluxes = {name: flux_near(free, spectra.LINES[name]) for name in ("Halpha", "Hbeta", "[NII]6584", "[OIII]5007")}
    assert fluxes["Halpha"] == pytest.approx(5.0, rel=1e-3)
    assert fluxes["Halpha"] / fluxes["Hbeta"] == pytest.approx(2.86, rel=1e-3)
    assert fluxes["[NII]6584"] / fluxes["Halpha"] == pytest.approx(10**-0.4, rel=1e-3)
    assert fluxes["[OIII]5007"] / fluxes["Hbeta"] == pytest.approx(10**-0.3, rel=1e-3)
    dusty = spectra.emission_lines(wave, 5.0, -0.4, -0.3, 20.0, 1.0, av_gas=1.0)
    assert flux_near(dusty, HA) / flux_near(dusty, spectra.LINES["Hbeta"]) > 3.5


def test_footprint_flags_outside_the_hexagon_and_the_5577_channels():
    flux, error, badpix = build(SPIRAL, n=21)
    wave = cube.wavelengths(1877)
    for y, x in ((0, 0), (0, 20), (20, 0), (20, 20)):  # corners lie outside the hexagon
        assert badpix[:, y, x].all() and not flux[:, y, x].any()
    centre = badpix[:, 10, 10]
    assert centre[np.abs(wave - 5577.3) < 3].all()
    assert centre[np.abs(wave - 5577.3) > 6].mean() < 0.01  # only rare cosmic rays elsewhere
    assert np.all(error[badpix == 1] == cube.BAD_ERROR) and np.all(error[badpix == 0] > 0)
    white = cube.white_light(flux, badpix)
    assert np.isnan(white[0, 0]) and np.nanargmax(white) == 10 * 21 + 10


def test_same_seed_same_cube_and_error_matches_the_scatter():
    f1, e1, b1 = build(SPIRAL, n=15, seed=7)
    f2, e2, b2 = build(SPIRAL, n=15, seed=7)
    f3, _, b3 = build(SPIRAL, n=15, seed=8)
    for a, b in ((f1, f2), (e1, e2), (b1, b2)):
        np.testing.assert_array_equal(a, b)
    good = (b1 == 0) & (b3 == 0)
    pull = (f1 - f3)[good] / (np.sqrt(2) * e1[good])
    assert np.std(pull) == pytest.approx(1.0, abs=0.03)


def test_flux_scale_matches_mag_r_and_central_snr_is_califa_like():
    g = galaxy(disc_h=2.5, bulge_re=1.0, mag_r=13.5)
    flux, error, badpix = build(g, n=41)
    wave = cube.wavelengths(1877)
    expected = 3631e-23 * 10 ** (-0.4 * g.mag_r) * 2.998e18 / cube.R_BAND**2 / cube.FLUX_UNIT
    measured = band(wave, integrated(flux, badpix), 6150, 6250)
    assert measured == pytest.approx(expected, rel=0.1)
    snr = np.median((flux / error)[(wave > 5000) & (wave < 6000), 19:22, 19:22])
    assert 20 < snr < 80


def test_full_size_cube_builds():
    flux, error, badpix = cube.build_cube(ELLIPTICAL, rng=np.random.default_rng(3))
    assert flux.shape == error.shape == badpix.shape == (1877, 73, 78)
    assert flux.dtype == error.dtype == np.float32 and badpix.dtype == np.uint8
    assert 0.3 < badpix[100].mean() < 0.45  # the hexagon fills ~60 % of a 78×73 cube, as in CALIFA
    assert np.isfinite(flux).all() and cube.central_spectrum(flux, badpix).shape == (1877,)
