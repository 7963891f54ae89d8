"""specmorph: galaxy morphology from RGB images, with IFS spectra as privileged information."""

__version__ = "0.1.0"
