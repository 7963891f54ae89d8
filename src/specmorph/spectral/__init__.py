"""Spectral side of specmorph: PCA of galaxy spectra, embedders and embedding metrics."""
