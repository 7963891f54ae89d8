"""Grad-CAM heat maps of any RGB model's `cam_layer`, and a per-class gallery PNG of them (a DVC plot image)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn
from tqdm import tqdm

from specmorph.evaluation.metrics import label_indices
from specmorph.io.atomic import atomic_file

logger = logging.getLogger(__name__)

CAM_ALPHA = 0.45  # opacity of the heat map over the RGB image
CAM_CMAP = "jet"
GALLERY_DPI = 80
PANEL_INCHES = 1.5  # side of one gallery panel


@dataclass(frozen=True)
class GradCam:
    """Grad-CAM maps with the forward pass's outputs, so that a gallery needs no second pass.

    Attributes:
        cams: (N, S, S) float32 heat maps, each scaled to max 1 (an all-zero map stays 0).
        probs: (N, C) float32 softmax probabilities of the RGB-only forward pass.
        target: (N,) int64 class whose logit each map explains.
    """

    cams: np.ndarray
    probs: np.ndarray
    target: np.ndarray

    @property
    def y_pred(self) -> np.ndarray:
        """(N,) int64 predicted class (argmax of `probs`)."""
        return self.probs.argmax(axis=1).astype(np.int64)


def _as_images(images: np.ndarray | torch.Tensor) -> np.ndarray:
    """(N, 3, S, S) float32 array, or ValueError naming the shape."""
    a = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if a.ndim != 4 or a.shape[1] != 3 or a.shape[2] != a.shape[3] or a.shape[0] == 0:
        raise ValueError(f"images must be a non-empty (N, 3, S, S) array, got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float32)


def _cam_batch(model: nn.Module, layer: nn.Module, x: torch.Tensor,
               target: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Grad-CAM of one batch: (B, S, S) maps in [0, 1], (B, C) probabilities, (B,) targets."""
    store: dict[str, torch.Tensor] = {}

    def keep(_module: nn.Module, _inputs: Any, output: Any) -> torch.Tensor:
        if not isinstance(output, torch.Tensor) or output.ndim != 4:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise ValueError(f"gradcam: cam_layer must output a (B, C, h, w) tensor, got {shape}")
        store["act"] = output
        # Later layers see a copy, so an in-place op after cam_layer cannot alter the tensor we differentiate.
        return output.clone()

    handle = layer.register_forward_hook(keep)
    try:
        logits = model(x)  # (B, C); RGB-only inference
    finally:
        handle.remove()
    if target is None:
        target = logits.argmax(dim=1)
    elif int(target.max()) >= logits.shape[1]:
        raise ValueError(f"gradcam: target class {int(target.max())} outside 0..{logits.shape[1] - 1}")
    act = store["act"]  # (B, K, h, w)
    score = logits.gather(1, target[:, None]).sum()
    # autograd.grad w.r.t. the activation only: parameters' .grad is never touched.
    (grad,) = torch.autograd.grad(score, act)  # (B, K, h, w)
    weights = grad.mean(dim=(2, 3), keepdim=True)  # (B, K, 1, 1)
    cam = F.relu((weights * act).sum(dim=1, keepdim=True))  # (B, 1, h, w)
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]  # (B, S, S)
    peak = cam.amax(dim=(1, 2), keepdim=True)
    cam = torch.where(peak > 1e-12, cam / peak.clamp_min(1e-12), torch.zeros_like(cam))
    return cam.detach(), torch.softmax(logits.detach(), dim=1), target


def gradcam_with_probs(model: nn.Module, images: np.ndarray | torch.Tensor,
                       target: Sequence[int] | np.ndarray | None = None, batch_size: int = 64) -> GradCam:
    """Grad-CAM (Selvaraju et al. 2017) of `model.cam_layer` for every image, with the probabilities.

    Each map is ReLU(Σ_k w_k A_k) with A the cam_layer output and w_k the spatial mean of
    ∂logit_target/∂A_k, upsampled bilinearly to the input size and divided by its maximum. The model
    runs in eval mode without a spectrum; every submodule's mode is restored afterwards, the hook is
    removed even on error, and parameter gradients are left untouched.

    Args:
        model: a network called as `model(x)` with x (B, 3, S, S) returning logits (B, C), with a
            `cam_layer` attribute whose output is (B, K, h, w).
        images: (N, 3, S, S) float32 in [0, 1].
        target: (N,) class indices whose logit each map explains; None: the predicted class.
        batch_size: images per forward/backward pass.

    Returns:
        A `GradCam` with cams (N, S, S) float32 in [0, 1], probs (N, C) and target (N,).

    Raises:
        ValueError: no `cam_layer`, a cam_layer output that is not 4-D, bad image shape or targets.
    """
    layer = getattr(model, "cam_layer", None)
    if not isinstance(layer, nn.Module):
        raise ValueError(f"gradcam: {type(model).__name__} has no `cam_layer` module to take Grad-CAM of")
    x_all = _as_images(images)
    n = len(x_all)
    if target is not None:
        target = np.asarray(target)
        if target.shape != (n,) or not np.issubdtype(target.dtype, np.integer) or (n and target.min() < 0):
            raise ValueError(f"gradcam: target must be {n} non-negative class indices, got {target!r}")
    if batch_size < 1:
        raise ValueError(f"gradcam: batch_size must be >= 1, got {batch_size}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    cams, probs, targets = [], [], []
    try:
        with torch.enable_grad():
            for start in tqdm(range(0, n, batch_size), desc="Grad-CAM", disable=None, leave=False, mininterval=2):
                x = torch.from_numpy(x_all[start:start + batch_size]).to(device)
                x.requires_grad_(True)  # a graph to cam_layer even where the weights are frozen
                t = None if target is None else torch.from_numpy(target[start:start + batch_size]).long().to(device)
                cam, prob, t = _cam_batch(model, layer, x, t)
                cams.append(cam.cpu())
                probs.append(prob.cpu())
                targets.append(t.cpu())
    finally:
        for m, training in modes:
            m.training = training
    return GradCam(cams=torch.cat(cams).numpy().astype(np.float32),
                   probs=torch.cat(probs).numpy().astype(np.float32),
                   target=torch.cat(targets).numpy().astype(np.int64))


def gradcam(model: nn.Module, images: np.ndarray | torch.Tensor,
            target: Sequence[int] | np.ndarray | None = None, batch_size: int = 64) -> np.ndarray:
    """Grad-CAM maps only; see `gradcam_with_probs`.

    Returns:
        (N, S, S) float32 in [0, 1].
    """
    return gradcam_with_probs(model, images, target, batch_size).cams


def _pick(indices: np.ndarray, k: int, rng: np.random.Generator | None) -> np.ndarray:
    """Up to k of `indices`: the first ones, or a random subset kept in index order."""
    if rng is None or len(indices) <= k:
        return indices[:k]
    return np.sort(rng.choice(indices, size=k, replace=False))


def _class_figure(rgb: np.ndarray, cams: np.ndarray, rows: tuple[np.ndarray, np.ndarray], y_pred: np.ndarray,
                  class_names: Sequence[str], n_per_row: int, title: str) -> Figure:
    """2 × n_per_row panels: correctly classified on top, misclassified (captioned "→ predicted") below."""
    fig = Figure(figsize=(PANEL_INCHES * n_per_row, 2 * PANEL_INCHES + 0.5), dpi=GALLERY_DPI)
    axes = fig.subplots(2, n_per_row, squeeze=False)
    for r, (picked, what) in enumerate(zip(rows, ("correct", "misclassified"), strict=True)):
        for c in range(n_per_row):
            ax = axes[r, c]
            ax.set_axis_off()
            if c < len(picked):
                i = int(picked[c])
                ax.imshow(rgb[i], interpolation="nearest")
                ax.imshow(cams[i], cmap=CAM_CMAP, alpha=CAM_ALPHA, vmin=0.0, vmax=1.0, interpolation="nearest")
                caption = f"#{i}" if r == 0 else f"#{i} → {class_names[int(y_pred[i])]}"
                ax.set_title(caption, fontsize=7)
            elif c == 0:
                ax.text(0.5, 0.5, f"{what}:\nnone", ha="center", va="center", fontsize=8, transform=ax.transAxes)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig


def write_gallery(images: np.ndarray | torch.Tensor, cams: np.ndarray, y_true: Sequence[Any] | np.ndarray,
                  y_pred: Sequence[Any] | np.ndarray, class_names: Sequence[str], out_dir: str | os.PathLike,
                  n_per_row: int = 4, title_prefix: str = "", seed: int | None = None) -> list[Path]:
    """Writes one Grad-CAM gallery PNG per class, `<out_dir>/<class>.png`.

    Top row: up to `n_per_row` images of the class that were classified correctly; bottom row: up to
    `n_per_row` of the class that were not, captioned "→ predicted". Each panel is the RGB image with
    its heat map overlaid; an empty row says "none". Files are written atomically; other files in
    `out_dir` are left alone.

    Args:
        images: (N, 3, S, S) float32 in [0, 1].
        cams: (N, S, S) heat maps in [0, 1] (e.g. `gradcam(...)`).
        y_true: (N,) true classes, names or indices into `class_names`.
        y_pred: (N,) predicted classes, names or indices into `class_names`.
        class_names: class names in index order; one PNG each.
        out_dir: destination directory, created if missing.
        n_per_row: panels per row.
        title_prefix: text put before each figure's title (e.g. the model name).
        seed: None: the first images in order; an int: a random subset drawn with this seed.

    Returns:
        The written paths, in `class_names` order.
    """
    rgb = _as_images(images).transpose(0, 2, 3, 1).clip(0.0, 1.0)  # (N, S, S, 3)
    cams = np.asarray(cams, dtype=np.float32)
    if cams.shape != rgb.shape[:3]:
        raise ValueError(f"write_gallery: cams shape {cams.shape} does not match images {rgb.shape[:3]}")
    t = label_indices(y_true, class_names, "y_true")
    p = label_indices(y_pred, class_names, "y_pred")
    if t.shape != (len(rgb),) or p.shape != (len(rgb),):
        raise ValueError(f"write_gallery: {len(rgb)} images but {t.size} y_true and {p.size} y_pred labels")
    if n_per_row < 1:
        raise ValueError(f"write_gallery: n_per_row must be >= 1, got {n_per_row}")
    for name in class_names:
        if not str(name) or "/" in str(name) or os.sep in str(name) or str(name).startswith("."):
            raise ValueError(f"write_gallery: class name {name!r} is not a plain file name")
    rng = None if seed is None else np.random.default_rng(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, name in enumerate(class_names):
        of_class = t == k
        correct = _pick(np.flatnonzero(of_class & (p == k)), n_per_row, rng)
        wrong = _pick(np.flatnonzero(of_class & (p != k)), n_per_row, rng)
        title = (f"{title_prefix}{name}: {int((of_class & (p == k)).sum())} of {int(of_class.sum())} correct "
                 "(top), misclassified (bottom)")
        fig = _class_figure(rgb, cams, (correct, wrong), p, class_names, n_per_row, title)
        path = out_dir / f"{name}.png"
        with atomic_file(path) as tmp:
            fig.savefig(tmp, format="png", dpi=GALLERY_DPI, metadata={"Software": None})
        paths.append(path)
    logger.info("wrote %d Grad-CAM gallery images to %s", len(paths), out_dir)
    return paths
