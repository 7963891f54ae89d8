"""Evaluation: classification metrics (`metrics`), seed-aggregated reports (`report`) and DVC plot data (`plots`)."""
