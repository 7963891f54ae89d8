"""A contact sheet of a survey directory: per class an RGB image, a cube's white-light image and spectrum."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from astropy.io import fits
from PIL import Image

from specmorph.io.atomic import atomic_file
from specmorph.io.layout import CUBE_SUFFIX, LAYOUT
from specmorph.taxonomy import CLASSES

log = logging.getLogger(__name__)


def _cube_views(cube_path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """White-light image (ny, nx), wavelengths (Å) and central 3×3 spectrum of a V500 cube file."""
    with fits.open(cube_path) as hdul:
        flux = hdul[0].data.astype(np.float32)  # (n_wave, ny, nx), 1e-16 erg/s/cm²/Å
        bad = hdul["BADPIX"].data.astype(bool)
        h = hdul[0].header
    flux = np.where(bad, np.nan, flux)
    wave = h["CRVAL3"] + h["CDELT3"] * (np.arange(flux.shape[0]) + 1 - h["CRPIX3"])  # Å
    white = np.nanmean(flux, axis=0)
    cy, cx = np.unravel_index(np.nanargmax(np.nan_to_num(white, nan=-np.inf)), white.shape)
    spec = np.nanmean(flux[:, max(cy - 1, 0):cy + 2, max(cx - 1, 0):cx + 2], axis=(1, 2))
    return white, wave, spec


def render_contact_sheet(survey_dir: Path, out_path: Path) -> Path:
    """Renders one row per class: SDSS-like cutout, the cube's white-light image, its central spectrum.

    Reads only the files on disk (the same ones later stages read) plus the mock truth table to
    pick one galaxy of each class.

    Args:
        survey_dir: A mock survey directory (e.g. data/raw).
        out_path: The PNG to write.

    Returns:
        `out_path`.
    """
    survey_dir = Path(survey_dir)
    truth = pd.read_csv(survey_dir / LAYOUT["truth_dir"] / "califa.csv")
    fig, axes = plt.subplots(len(CLASSES), 3, figsize=(11, 2.3 * len(CLASSES)),
                             gridspec_kw={"width_ratios": [1, 1, 2.6]})
    for row, name in enumerate(CLASSES):
        ax_rgb, ax_white, ax_spec = axes[row]
        picks = truth[truth["label"] == row]
        for ax in (ax_rgb, ax_white):
            ax.set_xticks([])
            ax.set_yticks([])
        if picks.empty:
            ax_rgb.set_ylabel(name.replace("_", " "), fontsize=8)
            ax_spec.text(0.5, 0.5, "no CALIFA galaxy of this class", ha="center", transform=ax_spec.transAxes)
            continue
        g = picks.iloc[0]
        image = Image.open(survey_dir / LAYOUT["cutout_dir"] / f"{g['id_str']}.jpg")
        ax_rgb.imshow(np.asarray(image))
        ax_rgb.set_ylabel(name.replace("_", " "), fontsize=8)
        ax_rgb.set_title(f"{g['id_str']} {g['hubtyp']} z={g['redshift']:.3f}", fontsize=7)
        white, wave, spec = _cube_views(survey_dir / LAYOUT["cube_dir"] / f"{g['id_str']}{CUBE_SUFFIX}")
        ax_white.imshow(np.arcsinh(white / np.nanpercentile(white, 90)), origin="lower", cmap="magma")
        ax_white.set_title("cube white light", fontsize=7)
        ax_spec.plot(wave, spec, lw=0.5, color="k")
        ax_spec.set_xlim(wave[0], wave[-1])
        ax_spec.tick_params(labelsize=6)
        ax_spec.set_title("central spectrum [1e-16 erg/s/cm²/Å]", fontsize=7)
    axes[-1][2].set_xlabel("observed wavelength [Å]", fontsize=8)
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out_path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    log.info("contact sheet written to %s", out_path)
    return out_path
