"""Checks how a model trained on the mock survey does on real SDSS cutouts (spiral vs not spiral).

The 20 real Galaxy Zoo cutouts in ../shared/data/sdss_examples are named spiral_<id>.jpg or
non_spiral_<id>.jpg. Each checkpoint classifies them through `specmorph.predict` (the exact training
preprocessing); a prediction counts as "spiral" when it is one of the three spiral classes.

Usage: python tools/real_transfer.py data/models/rgb_only_seed*.pt
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from specmorph.predict import predict_paths

SPIRAL = {"barred_spiral", "unbarred_loose_spiral", "unbarred_tight_spiral"}
REAL_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "sdss_examples"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="checkpoints")
    parser.add_argument("--real-dir", default=str(REAL_DIR), help="real cutouts named (non_)spiral_<id>.jpg")
    args = parser.parse_args()
    paths = sorted(Path(args.real_dir).glob("*.jpg"))
    if not paths:
        print(f"no real cutouts in {args.real_dir}; nothing to check")
        return 0
    truth = np.array([p.name.startswith("spiral") for p in paths])
    scores = []
    for model in args.models:
        df, _ = predict_paths(model, paths, batch_size=32)
        pred = df["predicted"].isin(SPIRAL).to_numpy()
        scores.append(float((pred == truth).mean()))
        print(f"{model}: spiral-vs-not accuracy {scores[-1]:.2f} on {len(paths)} real cutouts "
              f"({int(truth.sum())} spiral); predicted {df['predicted'].value_counts().to_dict()}")
    print(f"mean {np.mean(scores):.3f} ± {np.std(scores, ddof=1) if len(scores) > 1 else 0:.3f} over {len(scores)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
