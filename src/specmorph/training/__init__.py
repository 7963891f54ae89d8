"""Training: the one engine (`engine`) and the classifiers' task on it (`loop`), distributed helpers, the model plan."""
