"""Readers and writers: eCALIFA FITS cubes, catalogues (CSV/Parquet), self-describing HDF5 products, atomic writes."""
