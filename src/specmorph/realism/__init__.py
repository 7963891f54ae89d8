"""How close the mock survey is to the real sky: sim-to-real scores of the shipped models and image statistics."""
