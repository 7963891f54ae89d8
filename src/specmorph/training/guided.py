"""What one `model` choice trains: the RGB-only baseline, the guided network and, for distillation, its teacher.

`model` (params.yaml) and `train.rgb_inference` pick the networks trained for each seed, in order:

| model    | rgb_inference        | networks (checkpoint names)                                  |
|----------|----------------------|--------------------------------------------------------------|
| rgb_only | any                  | rgb_only                                                     |
| concat   | drop                 | rgb_only, concat (absent embedding without a spectrum)       |
| gated    | drop / hallucinate   | rgb_only, gated (F_spec zero / hallucinated from F_rgb)      |
| concat   | distil               | rgb_only, concat_teacher, concat (an RGB student)            |
| gated    | distil               | rgb_only, gated_teacher, gated (an RGB student)              |
| kd       | any (always distils) | rgb_only, kd_teacher (concat fusion), kd (an RGB student)    |

The network named after `model` is the one a user runs on RGB images alone; the baseline is trained
on the same split, seeds and budget.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from specmorph.models.config import ModelConfig
from specmorph.params import ParamsError
from specmorph.training.loop import TensorData, TrainParams, train_model
from specmorph.training.objectives import LossParams

RGB_INFERENCE: tuple[str, ...] = ("drop", "hallucinate", "distil")
BASELINE = "rgb_only"


@dataclass(frozen=True)
class Job:
    """One network to train.

    Attributes:
        name: checkpoint stem (`<name>_seed<k>.pt`).
        kind: `ModelConfig.kind`.
        teacher: name of an earlier job to distil from, or None.
        rgb_inference: `ModelConfig.rgb_inference` ("drop" or "hallucinate").
    """

    name: str
    kind: str
    teacher: str | None = None
    rgb_inference: str = "drop"


def plan(model: str, rgb_inference: str) -> list[Job]:
    """The networks trained for one seed, in training order (see the module docstring's table).

    Args:
        model: One of params.MODELS, checked where params.yaml is read (`params.shared`).
        rgb_inference: The `train.rgb_inference` key.

    Raises:
        ParamsError: unknown `rgb_inference`, or "hallucinate" with a model other than gated.
    """
    if rgb_inference not in RGB_INFERENCE:
        raise ParamsError(f"params.yaml: train.rgb_inference must be one of {', '.join(RGB_INFERENCE)}, "
                         f"got {rgb_inference!r}")
    jobs = [Job(BASELINE, "rgb")]
    if model == BASELINE:
        return jobs
    if model == "kd" or rgb_inference == "distil":
        teacher_kind = "concat" if model == "kd" else model
        return [*jobs, Job(f"{model}_teacher", teacher_kind), Job(model, "rgb", teacher=f"{model}_teacher")]
    if rgb_inference == "hallucinate" and model != "gated":
        raise ParamsError(f"params.yaml: train.rgb_inference 'hallucinate' is implemented for model gated, not {model}")
    return [*jobs, Job(model, model, rgb_inference=rgb_inference)]


@dataclass
class Trained:
    """A trained network with its config and per-epoch history."""

    model: nn.Module
    cfg: ModelConfig
    history: list[dict]


def train_jobs(jobs: list[Job], base: ModelConfig, params: TrainParams, losses: LossParams, train: TensorData,
               val: TensorData | None,
               on_epoch_for: Callable[[str], Callable[[int, dict], None] | None] | None = None,
               teacher_spectra: bool = True) -> dict[str, Trained]:
    """Trains `jobs` in order with identical `params` (same seed, epochs, optimiser and data order).

    Args:
        jobs: from `plan`.
        base: config shared by all jobs; each job replaces `kind` and `rgb_inference`.
        params: optimisation settings (one seed).
        losses: distillation and gated-fusion loss weights.
        train: training set with spectra.
        val: validation set (scored RGB-only), or None.
        on_epoch_for: job name -> per-epoch callback (e.g. dvclive logging), or None.
        teacher_spectra: False hides every spectrum from the teacher (training and distillation): the
            control that tells the spectra's effect from that of distillation itself.

    Returns:
        {job name: Trained}.
    """
    done: dict[str, Trained] = {}
    teachers = {job.teacher for job in jobs if job.teacher is not None}
    blind = TensorData(train.images, train.labels)  # the same images and labels without spectra
    for job in jobs:
        cfg = dataclasses.replace(base, kind=job.kind, rgb_inference=job.rgb_inference)
        teacher = None
        if job.teacher is not None:
            if job.teacher not in done:
                raise ValueError(f"train_jobs: {job.name} distils from {job.teacher}, which is not trained before it")
            teacher = done[job.teacher].model
        on_epoch = on_epoch_for(job.name) if on_epoch_for is not None else None
        data = blind if not teacher_spectra and (job.name in teachers or job.teacher is not None) else train
        model, history = train_model(cfg, params, data, val, on_epoch=on_epoch, teacher=teacher, losses=losses)
        done[job.name] = Trained(model, cfg, history)
    return done


def chains(jobs: list[Job]) -> list[list[Job]]:
    """`jobs` in groups that train independently of each other: a student with its teacher, every other job alone."""
    out: list[list[Job]] = []
    at: dict[str, int] = {}
    for job in jobs:
        if job.teacher is None:
            at[job.name] = len(out)
            out.append([job])
        elif job.teacher in at:
            out[at[job.teacher]].append(job)
        else:
            raise ValueError(f"chains: {job.name} distils from {job.teacher}, which is not planned before it")
    return out


def train_chains(index: int, items: list[tuple[int, list[Job]]], base: ModelConfig, params: TrainParams,
                 losses: LossParams, train: TensorData, val: TensorData | None, teacher_spectra: bool = True
                 ) -> list[dict]:
    """An `executor.map_items` task: `train_jobs` for each (seed, chain) item, `params` with the item's seed.

    Returns:
        Per item {"seed": seed, "trained": {job name: Trained}, "epochs": {job name: [the per-epoch metrics as
        the epoch callback saw them]}} (replayed into dvclive by the caller, which may be another process).
    """
    out = []
    for seed, chain in items:
        epochs: dict[str, list[dict]] = {}

        def record(name: str, epochs: dict[str, list[dict]] = epochs) -> Callable[[int, dict], None]:
            log = epochs.setdefault(name, [])
            return lambda epoch, metrics: log.append(dict(metrics))

        trained = train_jobs(chain, base, dataclasses.replace(params, seed=seed), losses, train, val, record,
                             teacher_spectra=teacher_spectra)
        out.append({"seed": seed, "trained": trained, "epochs": epochs})
    return out
