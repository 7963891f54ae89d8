"""Readers and writers: eCALIFA FITS cubes, catalogues (CSV/Parquet) and self-describing HDF5 products."""
