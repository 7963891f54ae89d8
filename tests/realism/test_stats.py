"""Tests for the cutout statistics: synthetic galaxies, stars and skies whose answers follow from their construction."""

import math

import numpy as np
import pytest

from specmorph.realism.stats import CENTRAL_RADIUS, STAT_NAMES, image_stats, radius_enclosing

SIZE = 161  # px, odd: the centre pixel is the centre of the image
C = (SIZE - 1) / 2


def _gaussian(amp: float, sigma: float, q: float = 1.0, angle_deg: float = 0.0, y0: float = C, x0: float = C
              ) -> np.ndarray:
    """(SIZE, SIZE) elliptical Gaussian: peak `amp`, major-axis std `sigma` px, axis ratio q, rotated."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    t = math.radians(angle_deg)
    u = (xx - x0) * math.cos(t) + (yy - y0) * math.sin(t)
    v = -(xx - x0) * math.sin(t) + (yy - y0) * math.cos(t)
    return amp * np.exp(-0.5 * (u**2 / sigma**2 + v**2 / (q * sigma) ** 2))


def _rgb(gray: np.ndarray, rng: np.random.Generator, sky: float, noise: float, uint8: bool = True) -> np.ndarray:
    """Three equal channels of `gray` + sky + independent Gaussian noise per channel."""
    img = sky + gray[:, :, None] + rng.normal(0.0, noise, (*gray.shape, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8) if uint8 else img


def test_half_light_radius_and_concentration_of_a_gaussian():
    """Circular Gaussian of std s: R50 = s sqrt(2 ln 2), R90 = s sqrt(2 ln 10), so R90/R50 = sqrt(ln 10 / ln 2).

    Peak 2000 over a noise of 2 (a float image): the isophotal mask stops where the blurred profile falls
    to ~1e-3 of its peak, so it misses ~0.1% of the flux, and the clipped noise inside it adds ~0.2%,
    moving R50 by < 0.2% and R90 by < 0.5%; pixel sampling adds < 0.3% (`radius_enclosing`); tolerance 1%.
    """
    s = 6.0
    out = image_stats(_rgb(_gaussian(2000.0, s), np.random.default_rng(1), 50.0, 2.0, uint8=False))
    assert out["half_light_radius"] == pytest.approx(s * math.sqrt(2 * math.log(2)), rel=0.01)
    assert out["concentration"] == pytest.approx(math.sqrt(math.log(10) / math.log(2)), rel=0.01)
    assert out["axis_ratio"] == pytest.approx(1.0, abs=0.01)
    assert out["n_sources"] == 0 and out["outside_flux_fraction"] == 0.0


@pytest.mark.parametrize(("q", "angle"), [(0.4, 30.0), (0.7, -75.0)])
def test_axis_ratio_from_second_moments(q, angle):
    """An elliptical Gaussian's second moments are s² and (q s)² along its axes, at any position angle."""
    out = image_stats(_rgb(_gaussian(200.0, 10.0, q, angle), np.random.default_rng(2), 20.0, 2.0))
    assert out["axis_ratio"] == pytest.approx(q, abs=0.02)


def test_sky_level_and_noise_are_recovered():
    """Sky 30, noise 3 per channel: luma noise = 3 * |(0.299, 0.587, 0.114)|; 3-sigma clipping keeps 98.7% of it.

    The border strip holds ~10^4 pixels (std of the std ~1%); the tolerance is 4% on the noise and 0.2
    gray levels (~ the rounding to uint8) on the level.
    """
    rng = np.random.default_rng(3)
    out = image_stats(_rgb(_gaussian(150.0, 5.0), rng, 30.0, 3.0))
    luma_noise = 3.0 * math.sqrt(0.299**2 + 0.587**2 + 0.114**2)
    assert out["background"] == pytest.approx(30.0, abs=0.2)
    assert out["sky_noise"] == pytest.approx(0.987 * luma_noise, rel=0.04)


def test_counts_point_sources_and_the_flux_outside_the_galaxy():
    """Four stars away from the galaxy are four sources; their share of the flux is known from the models.

    Fluxes: 2 pi s² A for each Gaussian. The mask of each object misses the wings below the threshold
    (~2 gray levels of blurred peaks 64-130), i.e. < 3% of a star's and < 1% of the galaxy's flux, so the
    fraction is right to 0.01.
    """
    gal = _gaussian(200.0, 6.0)
    stars = [(25.0, 30.0), (130.0, 30.0), (30.0, 135.0), (135.0, 125.0)]
    image = gal + sum(_gaussian(100.0, 2.0, y0=y, x0=x) for y, x in stars)
    out = image_stats(_rgb(image, np.random.default_rng(4), 20.0, 2.0, uint8=False))
    star_flux, gal_flux = 4 * 2 * math.pi * 2.0**2 * 100.0, 2 * math.pi * 6.0**2 * 200.0
    assert out["n_sources"] == len(stars)
    assert out["outside_flux_fraction"] == pytest.approx(star_flux / (star_flux + gal_flux), abs=0.01)


def test_colour_from_the_blue_and_green_channels():
    """Blue = green x 10^(-0.4 c) pixel by pixel: -2.5 log10(F_blue / F_green) = c."""
    rng = np.random.default_rng(5)
    g = _gaussian(150.0, 6.0)
    colour = 0.6
    img = np.stack([g, g, g * 10 ** (-0.4 * colour)], axis=2) + 25.0 + rng.normal(0.0, 1.0, (SIZE, SIZE, 3))
    assert image_stats(img)["colour_gr"] == pytest.approx(colour, abs=0.02)


def test_colour_ri_from_the_green_and_red_channels():
    """Green = red x 10^(-0.4 c) pixel by pixel: -2.5 log10(F_green / F_red) = c; blue does not enter."""
    rng = np.random.default_rng(15)
    g = _gaussian(150.0, 6.0)
    colour = 0.3
    img = np.stack([g, g * 10 ** (-0.4 * colour), 0.5 * g], axis=2) + 25.0 + rng.normal(0.0, 1.0, (SIZE, SIZE, 3))
    out = image_stats(img)
    assert out["colour_ri"] == pytest.approx(colour, abs=0.02)
    assert out["colour_gr"] == pytest.approx(-2.5 * math.log10(0.5 / 10 ** (-0.4 * colour)), abs=0.02)


def test_colour_gradient_is_the_outer_minus_the_inner_colour():
    """Blue = green x 10^(-0.4 c) with c = c_in within R50 of the centre and c_out beyond it: the gradient is
    c_out - c_in (a Gaussian's R50 is sigma sqrt(2 ln 2)); a uniform colour gives 0."""
    rng = np.random.default_rng(16)
    g = _gaussian(150.0, 8.0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    inner = np.hypot(yy - C, xx - C) < 8.0 * math.sqrt(2 * math.log(2))
    c_in, c_out = 0.5, 0.1
    blue = g * np.where(inner, 10 ** (-0.4 * c_in), 10 ** (-0.4 * c_out))
    noise = rng.normal(0.0, 0.5, (SIZE, SIZE, 3))
    out = image_stats(np.stack([g, g, blue], axis=2) + 25.0 + noise)
    assert out["colour_gradient"] == pytest.approx(c_out - c_in, abs=0.03)
    flat = image_stats(np.stack([g, g, g * 10 ** (-0.4 * c_in)], axis=2) + 25.0 + noise)
    assert flat["colour_gradient"] == pytest.approx(0.0, abs=0.02)


def test_central_surface_brightness_is_the_mean_within_the_central_aperture():
    """The mean of the noiseless model over the pixels within CENTRAL_RADIUS of the centre, within the noise."""
    gal = _gaussian(150.0, 6.0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    inside = np.hypot(yy - C, xx - C) <= CENTRAL_RADIUS
    out = image_stats(_rgb(gal, np.random.default_rng(6), 20.0, 2.0, uint8=False))
    assert out["central_sb"] == pytest.approx(gal[inside].mean(), abs=2.0)


def test_blank_sky_has_sky_statistics_and_no_galaxy():
    out = image_stats(_rgb(np.zeros((SIZE, SIZE)), np.random.default_rng(7), 10.0, 2.0))
    assert set(out) == set(STAT_NAMES)
    assert out["background"] == pytest.approx(10.0, abs=0.2) and out["n_sources"] == 0
    assert all(math.isnan(out[k]) for k in ("half_light_radius", "axis_ratio", "colour_gr", "colour_ri", "central_sb"))


def test_radius_enclosing_a_uniform_disc():
    """A uniform disc of radius R encloses half its flux within R / sqrt(2) and 90% within R sqrt(0.9)."""
    yy, xx = (a.ravel() for a in np.mgrid[-60:61, -60:61])
    inside = np.hypot(yy, xx) <= 40.0
    for subsample in (1, 2):
        r50, r90 = radius_enclosing(yy[inside], xx[inside], np.ones(inside.sum()), (0.5, 0.9), subsample)
        assert r50 == pytest.approx(40.0 / math.sqrt(2), rel=0.01)
        assert r90 == pytest.approx(40.0 * math.sqrt(0.9), rel=0.01)
    assert all(math.isnan(r) for r in radius_enclosing(yy, xx, np.zeros(yy.size), (0.5,)))


def test_rejects_a_grey_image():
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        image_stats(np.zeros((10, 10)))


def test_asymmetry_and_clumpiness_of_knots_on_a_smooth_galaxy():
    """CAS on a noiseless Gaussian galaxy (std 20 px) with and without compact knots (std 1 px) far from its centre.

    A point-symmetric galaxy has A = 0. One knot of flux F_k (a fraction f of the total) at 25 px appears
    once in I and once, opposite, in I_180 (2f), and it moves the centroid by δ = 25f px, so the rotated
    Gaussian is offset by 2δ, which adds 2δ Σ|∂I/∂x| / ΣI = 2δ sqrt(2/π)/s; tolerance 15%. Clumpiness: the
    knot adds at most its own flux f above the smoothed copy, and its smoothed halo (std 0.3 R50 ≈ 7 px)
    cancels part of the Gaussian's own small positive residual there, so S rises by between f/4 and f.
    """
    s = 20.0
    gal = _gaussian(100.0, s)
    smooth = image_stats(_rgb(gal, np.random.default_rng(5), 10.0, 0.0, uint8=False))
    assert smooth["asymmetry"] == pytest.approx(0.0, abs=1e-3)
    knot = _gaussian(80.0, 1.0, y0=C, x0=C + 25.0)
    f = 2 * math.pi * 80.0 / (2 * math.pi * 80.0 + 2 * math.pi * s**2 * 100.0)
    lumpy = image_stats(_rgb(gal + knot, np.random.default_rng(5), 10.0, 0.0, uint8=False))
    assert lumpy["asymmetry"] == pytest.approx(2 * f + 2 * 25.0 * f * math.sqrt(2 / math.pi) / s, rel=0.15)
    assert f / 4 < lumpy["clumpiness"] - smooth["clumpiness"] <= f
