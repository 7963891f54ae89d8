"""Catalogue operations: sky crossmatch, GZ2/CALIFA label mapping, sample selection and grouped splits."""
