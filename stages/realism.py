"""Stage `realism`: shipped checkpoints on real labelled image sets; mock-vs-real image statistics and spectra.

The real sets are params (`realism.real_sets`), not DVC deps: a clone without them still runs, and each
absent set is reported as {"skipped": "no real set at <path>"}. After changing a set's files, re-run
with `dvc repro -f -s realism`.
"""

from specmorph.executor import executor_params
from specmorph.params import shared, typed
from specmorph.realism.compare import mock_labels
from specmorph.realism.report import NOTES, realism_params, realism_report
from specmorph.realism.sim_to_real import SCHEMES
from specmorph.sections import EvaluateSection
from specmorph.stage_utils import params_of, stage_args, write_metrics
from specmorph.training.budget import TrainSection
from specmorph.training.guided import BASELINE, plan


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, ("--images", "image table (labels stage)"),
                      ("--truth-dir", "mock truth tables (absent for real data/raw)"),
                      ("--models-dir", "checkpoints (train stage)"), ("--metrics", "metrics JSON"),
                      ("--plot-dir", "plot folder (confusion CSVs, histogram PNGs)"))
    params, section = params_of(args.params, "realism")
    p, real_sets = realism_params(section)
    top = shared(params)
    ev = typed(params, "evaluate", EvaluateSection)
    seeds = list(ev.seeds)
    rgb_inference = typed(params, "train", TrainSection).rgb_inference
    guided = plan(top.model, rgb_inference)[-1].name
    families = {"rgb_only": BASELINE, **({"guided": guided} if guided != BASELINE else {})}
    mock, labels_from = mock_labels(args.images, args.truth_dir, p.mock_sources)
    sets, spectra = realism_report(real_sets, mock, args.models_dir, families, seeds, p, top.seed,
                                   args.plot_dir, executor_params(params), args.truth_dir, ev.tta)
    write_metrics({"seeds": seeds, "tta": ev.tta, "families": families, "notes": NOTES,
                   "schemes": {k: {c: list(names) for c, names in v.items()} for k, v in SCHEMES.items()},
                   "mock": {"sources": list(p.mock_sources), "labels": labels_from, "n_images": len(mock)},
                   "max_images": p.max_images, "sets": sets, "spectra": spectra}, args.metrics)


if __name__ == "__main__":
    main()
