"""Tests of the galaxy light model (sky.render) and the SDSS-like observation and colour mapping (sky.observe)."""

import dataclasses
import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from specmorph.sky.observe import (
    GAIN,
    GREY_BELOW,
    NMGY_PER_COUNT,
    SDSS_PIXSCALE,
    SKY_NMGY_PER_ARCSEC2,
    SKY_TINT,
    SPIKE_FRACTION,
    SPIKE_LENGTH,
    SPIKE_MAG,
    _noise_matrix,
    add_spikes,
    encode_jpeg,
    observe_sdss,
    render_cutout,
    sdss_rgb,
)
from specmorph.sky.render import BULGE_SIZE_BAND, Draws, band_ratios, galaxy_sb, nanomaggies, render_model_gri
from specmorph.sky.truth import GalaxyTruth

REAL_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "sdss_examples"
BASE = GalaxyTruth(
    id_str="T0", ra=180.0, dec=10.0, redshift=0.03, label=7, galaxy10=6, hubtyp="Sb", mag_r=15.0,
    bulge_frac=0.0, bulge_n=2.0, bulge_re=1.0, bulge_q=0.9, disc_h=4.0, disc_q=1.0, inclination=0.0, pa=0.0,
    bar_strength=0.0, bar_length=0.0, n_arms=0, pitch=0.0, arm_strength=0.0, dust_lane=0.0, bulge_gr=0.8,
    disc_gr=0.4, age_bulge=9.0, age_disc=3.0, ew_ha=0.0, log_nii_ha=-0.4, log_oiii_hb=-0.3, av=0.3,
    v_rot=200.0, sigma=120.0)


def galaxy(**kw) -> GalaxyTruth:
    return dataclasses.replace(BASE, **kw)


def model(t: GalaxyTruth, size: int = 128, pixscale: float = SDSS_PIXSCALE, seed: int = 0) -> np.ndarray:
    return render_model_gri(t, size, pixscale, np.random.default_rng(seed))


def moments(img: np.ndarray) -> tuple[float, float]:
    """Axis ratio and position angle (deg east of north; image north up, east left) of second moments."""
    h, w = img.shape
    yy, xx = np.mgrid[:h, :w]
    east, north = (w - 1) / 2 - xx, (h - 1) / 2 - yy
    s = img.sum()
    mxx, myy, mxy = (img * east**2).sum() / s, (img * north**2).sum() / s, (img * east * north).sum() / s
    tr, det = mxx + myy, math.sqrt(((mxx - myy) / 2) ** 2 + mxy**2)
    q = math.sqrt((tr / 2 - det) / (tr / 2 + det))
    pa = math.degrees(0.5 * math.atan2(2 * mxy, myy - mxx)) % 180  # angle from north towards east
    return q, pa


@pytest.mark.parametrize("t", [
    galaxy(),  # exponential disc
    galaxy(bulge_frac=1.0, bulge_n=4.0, bulge_re=0.5, bulge_q=0.6, disc_h=0.0),  # compact de Vaucouleurs
    galaxy(bulge_frac=0.3, bulge_re=0.4, bulge_n=3.0),
])
def test_total_flux_matches_magnitude(t):
    img = model(t, size=160)
    assert img.dtype == np.float64 and img.shape == (3, 160, 160)
    assert img[1].sum() == pytest.approx(nanomaggies(t.mag_r), rel=0.03)


def test_inclined_and_edge_on_axis_ratios():
    q_incl, _ = moments(model(galaxy(disc_q=0.5, inclination=60.0))[1])
    q_edge, _ = moments(model(galaxy(disc_q=0.12, inclination=88.0))[1])
    assert q_incl == pytest.approx(0.5, abs=0.06)
    assert q_edge < 0.3


def test_position_angle_moves_the_long_axis():
    for pa in (30.0, 120.0):
        _, measured = moments(model(galaxy(disc_q=0.4, inclination=66.0, pa=pa))[1])
        assert abs((measured - pa + 90) % 180 - 90) < 3


def test_bulge_is_redder_than_disc():
    img = model(galaxy(bulge_frac=0.4, bulge_re=1.5, bulge_n=3.0))
    yy, xx = np.mgrid[:128, :128]
    r = np.hypot(yy - 63.5, xx - 63.5) * SDSS_PIXSCALE  # arcsec
    centre, outer = r < 1.0, (r > 8) & (r < 14)
    gr_centre = img[0][centre].sum() / img[1][centre].sum()
    gr_outer = img[0][outer].sum() / img[1][outer].sum()
    assert gr_centre < 0.8 * gr_outer  # less g per r in the bulge: redder


def test_spheroid_is_larger_in_g_than_in_i_with_its_colour_kept():
    """A pure Gaussian-like (n = 0.5) spheroid: each band's second-moment radius scales as BULGE_SIZE_BAND,
    each band's total flux is the colour's (band_ratios), so the outskirts are bluer than the centre."""
    t = galaxy(bulge_frac=1.0, bulge_n=0.5, bulge_re=1.5, bulge_q=1.0, disc_h=0.0)
    ax = (np.arange(241) - 120) * 0.1  # arcsec, out to 8 R_e
    x, y = np.meshgrid(ax, ax)
    img = galaxy_sb(t, x, y, Draws(bar_angle=0.0, arm_phase2=0.0, lane_side=1.0))  # (3, 241, 241)
    r2 = x * x + y * y
    size = [math.sqrt((img[b] * r2).sum() / img[b].sum()) for b in range(3)]
    assert size[0] / size[1] == pytest.approx(BULGE_SIZE_BAND[0] / BULGE_SIZE_BAND[1], rel=1e-3)
    assert size[2] / size[1] == pytest.approx(BULGE_SIZE_BAND[2] / BULGE_SIZE_BAND[1], rel=1e-3)
    flux = img.sum(axis=(1, 2))
    assert flux / flux[1] == pytest.approx(band_ratios(t.bulge_gr), rel=1e-3)
    centre, outer = r2 < 1.0, r2 > 9.0
    assert img[0][outer].sum() / img[1][outer].sum() > img[0][centre].sum() / img[1][centre].sum()


def test_bar_adds_a_central_elongated_component():
    plain = galaxy(bulge_frac=0.1)
    barred = galaxy(bulge_frac=0.1, bar_strength=0.3, bar_length=6.0)
    box = slice(64 - 15, 64 + 15)
    a, b = model(plain)[1][box, box], model(barred)[1][box, box]
    q_plain, _ = moments(a)
    q_bar, _ = moments(b)
    q_excess, _ = moments(np.clip(b - a, 0, None))  # the light the bar adds
    assert q_plain > 0.95
    assert q_bar < 0.9
    assert q_excess < 0.5


def _arm_crossings(pitch: float) -> int:
    """Sign changes of (spiral / smooth disc - 1) along a ray from 4" to 13" in a face-on disc."""
    spiral = model(galaxy(n_arms=2, pitch=pitch, arm_strength=0.6), size=128, pixscale=0.2)[1]
    smooth = model(galaxy(), size=128, pixscale=0.2)[1]
    ratio = spiral[63, 84:128] / smooth[63, 84:128] - 1  # along a ray, 4"-13" from the centre
    return int(np.sum(np.diff(np.sign(ratio)) != 0))


def test_tight_arms_cross_a_radius_more_often_than_loose_arms():
    assert _arm_crossings(10.0) >= _arm_crossings(30.0) + 2


def test_dust_lane_darkens_mid_plane_more_in_g_than_i():
    t = galaxy(disc_q=0.12, inclination=89.0, bulge_frac=0.2)
    clear, dusty = model(t), model(dataclasses.replace(t, dust_lane=0.8))
    mid = (slice(44, 84), slice(62, 66))  # the mid-plane (PA 0: the disc runs north-south, along a column)
    loss = 1 - dusty[(slice(None), *mid)].sum(axis=(1, 2)) / clear[(slice(None), *mid)].sum(axis=(1, 2))
    assert loss[0] > 0.2
    assert loss[0] > 1.5 * loss[2]


def test_sky_noise_matches_sdss_photometry():
    rng = np.random.default_rng(1)
    out = observe_sdss(np.zeros((3, 96, 96), np.float32), SDSS_PIXSCALE, rng, n_stars_per_arcmin2=0.0,
                       n_galaxies_per_arcmin2=0.0, neighbour_prob=0.0, bright_star_prob=0.0)
    sky = np.asarray(SKY_NMGY_PER_ARCSEC2) * SDSS_PIXSCALE**2  # nmgy per pixel
    expected = np.sqrt(sky * NMGY_PER_COUNT / GAIN)  # Poisson: sqrt(electrons) / (gain / nmgy-per-count)
    np.testing.assert_allclose(out.std(axis=(1, 2)), expected, rtol=0.05)
    assert abs(float(out[1].mean())) < 3 * expected[1] / 96  # sky subtracted


def test_rgb_and_jpeg_are_deterministic():
    t = galaxy(bulge_frac=0.2, n_arms=2, pitch=15.0, arm_strength=0.4, disc_q=0.7, inclination=45.0, pa=40.0)
    a = render_cutout(t, 96, 0.3, rng=np.random.default_rng(5))
    b = render_cutout(t, 96, 0.3, rng=np.random.default_rng(5))
    c = render_cutout(t, 96, 0.3, rng=np.random.default_rng(6))
    assert a.dtype == np.uint8 and a.shape == (96, 96, 3)
    assert encode_jpeg(a) == encode_jpeg(b)
    assert encode_jpeg(a) != encode_jpeg(c)
    rgb = sdss_rgb(np.zeros((3, 8, 8), np.float32))
    assert rgb.dtype == np.uint8 and rgb.shape == (8, 8, 3) and rgb.max() < 20  # empty sky is dark


@pytest.mark.parametrize("gain", [1.0, 1.3])
def test_rgb_follows_the_calibrated_asinh_curve(gain):
    """Bright grey pixels (equal scaled bands, well above the sky tint) get gain asinh(stretch q I) / q of 255:
    make_lupton_rgb with Q' = 10 sinh(q / (10 gain)) is the calibration's curve, not merely close to it."""
    levels = np.array([0.3, 1.0, 3.0, 10.0])  # I, scaled nmgy per native pixel
    q, stretch = 6.0, 0.9
    gri = np.broadcast_to(levels[None, None, :], (3, 1, 4)) / np.array([2.0, 1.5, 1.0])[:, None, None]
    rgb = sdss_rgb(gri, scales=(2.0, 1.5, 1.0), q=q, stretch=stretch, offset=0.0, gain=gain)
    expected = np.minimum(gain * np.arcsinh(stretch * q * levels) / q, 1.0) * 255
    w = levels**2 / (levels**2 + GREY_BELOW**2)  # the faint-end tint still shifts the channels a little
    tinted = (w[None] + (1 - w[None]) * np.array(SKY_TINT)[:, None]) * expected[None]
    assert np.abs(rgb[0].T.astype(float) - np.minimum(tinted, 255)).max() <= 1.0


def _border_std(rgb: np.ndarray) -> float:
    """Median over channels of the 5-MAD-clipped std of the outer 20 px."""
    b = np.concatenate([rgb[:20].reshape(-1, 3), rgb[-20:].reshape(-1, 3)]).astype(float)
    med = np.median(b, axis=0)
    mad = np.maximum(1.4826 * np.median(np.abs(b - med), axis=0), 1.0)
    return float(np.median([b[np.abs(b[:, k] - med[k]) < 5 * mad[k], k].std() for k in range(3)]))


@pytest.mark.skipif(not REAL_DIR.is_dir(), reason="shared reference cutouts not available")
def test_sky_noise_like_real_cutouts():
    real = np.median([_border_std(np.asarray(Image.open(p).convert("RGB"))) for p in sorted(REAL_DIR.glob("*.jpg"))])
    t = galaxy(mag_r=16.5, disc_h=2.0, bulge_frac=0.2)
    mock = np.median([_border_std(np.asarray(Image.open(io.BytesIO(encode_jpeg(
        render_cutout(t, 424, ps, rng=np.random.default_rng(i), neighbour_prob=0.0, bright_star_prob=0.0))))))
        for i, ps in enumerate((0.12, 0.2, 0.3))])
    assert real / 1.5 < mock < real * 1.5


def test_spikes_hold_their_fraction_of_a_bright_stars_light():
    """A 12th-mag star's cross holds SPIKE_FRACTION of its light, less the e^-5 cut at 5 e-folding lengths,
    along the two vanes only; a star fainter than SPIKE_MAG gets none."""
    pixscale, size = 0.4, 401
    img = np.zeros((3, size, size))
    flux = np.array([[0.5, 1.0, 1.4]]) * nanomaggies(12.0)  # (1, 3) nmgy
    add_spikes(img, np.array([[200.0, 200.0]]), flux, pixscale, angle=0.0)
    length = SPIKE_LENGTH * math.sqrt(10 ** (0.4 * 2.0)) / pixscale  # px at r = 12
    assert 5 * length < 200  # the whole cross is inside the image
    np.testing.assert_allclose(img.sum(axis=(1, 2)), SPIKE_FRACTION * flux[0] * (1 - math.exp(-5)), rtol=0.01)
    assert img[1, 200, 230] > 100 * img[1, 230, 230]  # on a vane vs between the vanes
    faint = np.zeros((3, 64, 64))
    add_spikes(faint, np.array([[32.0, 32.0]]), np.array([[1.0, 1.0, 1.0]]) * nanomaggies(SPIKE_MAG + 1), 0.4, 0.3)
    assert not faint.any()


def test_noise_matrix_keeps_variance_and_correlates_like_its_kernel():
    """Rows have unit sum of squares (white noise keeps unit variance); two output pixels l apart, i.e.
    l/step coarse px, share the Gaussian overlap exp(-(l/step)² / (4 σ²)) of their weights."""
    step, sigma = 4.0, 2.0
    m = _noise_matrix(200, 60, step, sigma)
    np.testing.assert_allclose((m * m).sum(axis=1), 1.0, rtol=1e-12)
    corr = m @ m.T
    for lag in (2, 4, 8, 16):
        assert corr[100, 100 + lag] == pytest.approx(math.exp(-((lag / step) ** 2) / (4 * sigma**2)), abs=0.01)
