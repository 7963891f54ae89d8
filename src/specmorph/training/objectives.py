"""Training objectives: cross-entropy, knowledge distillation and the gated-fusion loss with its extra terms."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from specmorph.models.fusion import GatedFusion

# (model, images, labels, spec, has_spec) -> (loss, logits)
Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None],
                     tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class LossParams:
    """Weights of the distillation and gated-fusion loss terms (`train.losses` in params.yaml).

    Attributes:
        kd_alpha: distillation, weight α of the hard-label cross-entropy; (1 − α) goes to the soft term.
        kd_temperature: distillation temperature T (the soft term is scaled by T², Hinton et al. 2015).
        aux_weight: gated, cross-entropy of the auxiliary classifier on F_spec.
        align_weight: gated, mean 1 − cos(F_rgb, F_spec) over samples with a spectrum.
        contrast_weight: gated, symmetric InfoNCE between F_rgb and F_spec of the batch's samples with a spectrum.
        tau: InfoNCE temperature.
        hallucinate_weight: gated with rgb_inference "hallucinate", mean squared error of the
            hallucinated F_spec against the real (detached) F_spec.
    """

    kd_alpha: float = 0.5
    kd_temperature: float = 3.0
    aux_weight: float = 0.5
    align_weight: float = 0.3
    contrast_weight: float = 0.3
    tau: float = 0.1
    hallucinate_weight: float = 1.0

    def __post_init__(self) -> None:
        bad = {
            "kd_alpha": not 0.0 <= self.kd_alpha <= 1.0,
            "kd_temperature": self.kd_temperature <= 0,
            "aux_weight": self.aux_weight < 0,
            "align_weight": self.align_weight < 0,
            "contrast_weight": self.contrast_weight < 0,
            "tau": self.tau <= 0,
            "hallucinate_weight": self.hallucinate_weight < 0,
        }
        if any(bad.values()):
            names = ", ".join(f"{k}={getattr(self, k)}" for k, v in bad.items() if v)
            raise ValueError(f"LossParams out of range: {names}")


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, alpha: float,
            temperature: float, weight: torch.Tensor | None = None) -> torch.Tensor:
    """α·CE(student, labels) + (1 − α)·T²·KL(softmax(teacher/T) ‖ softmax(student/T)), KL averaged over the batch.

    Args:
        student_logits: (B, C).
        teacher_logits: (B, C), treated as constants.
        labels: (B,) class indices.
        alpha: weight of the hard-label term.
        temperature: softening temperature T.
        weight: (C,) class weights of the cross-entropy, or None.
    """
    ce = F.cross_entropy(student_logits, labels, weight=weight)
    t = temperature
    kl = F.kl_div(F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits.detach() / t, dim=1),
                  reduction="batchmean", log_target=True)
    return alpha * ce + (1.0 - alpha) * t * t * kl


def cosine_alignment(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean of 1 − cos(a_i, b_i) over rows of (N, F) tensors; 0 for N = 0."""
    if a.shape[0] == 0:
        return a.sum() * 0.0
    return (1.0 - F.cosine_similarity(a, b, dim=1, eps=1e-8)).mean()


def info_nce(a: torch.Tensor, b: torch.Tensor, tau: float) -> torch.Tensor:
    """Symmetric InfoNCE of paired rows (a_i, b_i) against the batch's other rows; 0 for fewer than 2 rows.

    Args:
        a: (N, F) features of one modality.
        b: (N, F) features of the other; row i of `b` is the positive of row i of `a`.
        tau: temperature on the cosine similarities.
    """
    n = a.shape[0]
    if n < 2:
        return a.sum() * 0.0
    logits = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T / tau  # (N, N)
    target = torch.arange(n, device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def gated_loss(parts: dict, labels: torch.Tensor, losses: LossParams,
               weight: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """CE + aux·CE(aux head) + align·(1 − cos) + contrast·InfoNCE (+ hallucinate·MSE) of `GatedFusion.parts`.

    The terms other than the main cross-entropy use only the samples that have a spectrum (`has`), and
    count zero in a batch without any.

    Returns:
        (total loss, {term: value}).
    """
    ce = F.cross_entropy(parts["logits"], labels, weight=weight)
    has = parts["has"]
    f_rgb, f_spec = parts["f_rgb"][has], parts["f_spec"][has]  # (N, F)
    zero = ce * 0.0
    aux = F.cross_entropy(parts["aux_logits"][has], labels[has], weight=weight) if has.any() else zero
    align = cosine_alignment(f_rgb, f_spec)
    nce = info_nce(f_rgb, f_spec, losses.tau)
    hall = zero
    if parts["f_hall"] is not None and has.any():
        hall = F.mse_loss(parts["f_hall"][has], f_spec.detach())
    total = (ce + losses.aux_weight * aux + losses.align_weight * align + losses.contrast_weight * nce
             + losses.hallucinate_weight * hall)
    terms = {"ce": ce, "aux": aux, "align": align, "contrast": nce, "hallucinate": hall}
    return total, {k: float(v.detach()) for k, v in terms.items()}


def make_objective(model: nn.Module, teacher: nn.Module | None, losses: LossParams,
                   weight: torch.Tensor | None, label_smoothing: float = 0.0) -> Objective:
    """The loss of one training step for `model`.

    Args:
        model: the network being trained.
        teacher: a trained network to distil from (its eval-mode logits on the same augmented images,
            with the batch's spectra), or None.
        losses: loss-term weights.
        weight: (C,) class weights of the cross-entropy terms, or None.
        label_smoothing: of the plain cross-entropy objective.

    Returns:
        objective(model, x, y, spec, has_spec) -> (loss, logits).
    """
    if teacher is not None:
        teacher.eval()

        def distil(m, x, y, spec, has_spec):
            with torch.no_grad():
                t_logits = teacher(x, spec, has_spec)  # (B, C)
            logits = m(x)  # the student never sees spectra
            return kd_loss(logits, t_logits, y, losses.kd_alpha, losses.kd_temperature, weight), logits

        return distil
    if isinstance(model, GatedFusion):

        def gated(m, x, y, spec, has_spec):
            parts = m.parts(x, spec, has_spec)
            return gated_loss(parts, y, losses, weight)[0], parts["logits"]

        return gated

    def cross_entropy(m, x, y, spec, has_spec):
        logits = m(x, spec, has_spec)
        return F.cross_entropy(logits, y, weight=weight, label_smoothing=label_smoothing), logits

    return cross_entropy
