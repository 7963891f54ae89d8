"""Tests for the training objectives: distillation, alignment, InfoNCE, the gated-fusion loss and make_objective."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from specmorph.models import ModelConfig, build_model
from specmorph.torchutil import torch_settings
from specmorph.training.objectives import (
    LossParams,
    cosine_alignment,
    gated_loss,
    info_nce,
    kd_loss,
    make_objective,
)

CFG = ModelConfig(kind="gated", n_classes=3, label_cols=("a", "b", "c"), image_size=32, depth=(1, 1), width=8,
                  feature_dim=16, head_hidden=8, spec_dim=5, spec_hidden=8, spec_dropout=0.0)
NO_EXTRA = LossParams(aux_weight=0.0, align_weight=0.0, contrast_weight=0.0, hallucinate_weight=0.0)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: tiny 2-thread convolutions are ~300× slower on a busy 2-core machine."""
    with torch_settings(1):
        yield


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _logits(seed: int = 0, b: int = 5, c: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, c, generator=g, dtype=torch.float64), torch.randn(b, c, generator=g, dtype=torch.float64),
            torch.randint(0, c, (b,), generator=g))


@pytest.mark.parametrize("with_weight", [False, True])
def test_kd_loss_matches_hand_computation(with_weight):
    s, t, y = _logits()
    alpha, temp = 0.3, 2.5
    w = np.array([1.0, 2.0, 0.5, 3.0])
    sn, tn, yn = s.numpy(), t.numpy(), y.numpy()
    nll = -np.log(_softmax(sn)[np.arange(5), yn])  # (B,)
    ce = (w[yn] * nll).sum() / w[yn].sum() if with_weight else nll.mean()
    p_s, p_t = _softmax(sn / temp), _softmax(tn / temp)
    kl = (p_t * (np.log(p_t) - np.log(p_s))).sum(axis=1).mean()
    expected = alpha * ce + (1 - alpha) * temp**2 * kl
    weight = torch.tensor(w) if with_weight else None
    assert float(kd_loss(s, t, y, alpha, temp, weight)) == pytest.approx(expected, rel=1e-10)


def test_kd_loss_limits():
    s, t, y = _logits(1)
    ce = float(F.cross_entropy(s, y))
    assert float(kd_loss(s, t, y, 1.0, 4.0)) == pytest.approx(ce, rel=1e-12)  # alpha = 1: plain CE
    assert float(kd_loss(s, s.clone(), y, 0.0, 3.0)) == pytest.approx(0.0, abs=1e-12)  # identical logits: KL = 0
    assert float(kd_loss(s, s.clone(), y, 0.4, 3.0)) == pytest.approx(0.4 * ce, rel=1e-12)


def test_kd_loss_produces_no_teacher_gradient():
    s, t, y = _logits(2)
    s.requires_grad_(True)
    t.requires_grad_(True)
    kd_loss(s, t, y, 0.2, 2.0).backward()
    assert t.grad is None
    assert s.grad is not None and s.grad.abs().sum() > 0


def test_cosine_alignment_known_answers():
    a = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]])
    assert float(cosine_alignment(a, a)) == pytest.approx(0.0, abs=1e-6)
    assert float(cosine_alignment(a, 3 * a)) == pytest.approx(0.0, abs=1e-6)  # scale does not matter
    assert float(cosine_alignment(a, -a)) == pytest.approx(2.0, abs=1e-6)
    e = torch.eye(2)
    assert float(cosine_alignment(e, e.flip(0))) == pytest.approx(1.0, abs=1e-6)  # orthogonal
    assert float(cosine_alignment(a[:0], a[:0])) == 0.0


def test_info_nce_two_by_two_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    tau = 0.5
    # Cosine similarities: S = [[1, 1/√2], [0, 1/√2]]; logits S / tau.
    r = 1 / math.sqrt(2) / tau
    row0 = -math.log(math.exp(2) / (math.exp(2) + math.exp(r)))  # a_0 against b_0, b_1
    row1 = -math.log(math.exp(r) / (math.exp(0) + math.exp(r)))  # a_1 against b_0, b_1
    col0 = -math.log(math.exp(2) / (math.exp(2) + math.exp(0)))  # b_0 against a_0, a_1
    col1 = -math.log(math.exp(r) / (math.exp(r) + math.exp(r)))  # b_1 against a_0, a_1
    expected = 0.5 * ((row0 + row1) / 2 + (col0 + col1) / 2)
    assert float(info_nce(a, b, tau)) == pytest.approx(expected, rel=1e-6)


def test_info_nce_small_batches_are_zero():
    a = torch.randn(1, 4, requires_grad=True)
    assert float(info_nce(a, a + 1, 0.1).detach()) == 0.0
    assert float(info_nce(a[:0], a[:0], 0.1).detach()) == 0.0
    info_nce(a, a + 1, 0.1).backward()  # still a graph, so a loss that includes it can be backpropagated
    assert not a.grad.any()


def test_info_nce_aligned_pairs_beat_shuffled_pairs():
    g = torch.Generator().manual_seed(0)
    a = 5 * torch.eye(6, 8) + 0.1 * torch.randn(6, 8, generator=g)  # well separated rows
    b = a + 0.1 * torch.randn(6, 8, generator=g)
    aligned = float(info_nce(a, b, 0.1))
    shuffled = float(info_nce(a, b[torch.tensor([1, 2, 3, 4, 5, 0])], 0.1))
    assert aligned < 1e-3 < 5.0 < shuffled


def _parts(has: list[bool], hall: bool = True, seed: int = 0) -> tuple[dict, torch.Tensor]:
    """A synthetic `GatedFusion.parts` dict (B = 4, C = 3, F = 6) and labels."""
    g = torch.Generator().manual_seed(seed)
    parts = {"logits": torch.randn(4, 3, generator=g), "aux_logits": torch.randn(4, 3, generator=g),
             "f_rgb": torch.randn(4, 6, generator=g), "f_spec": torch.randn(4, 6, generator=g).relu(),
             "has": torch.tensor(has), "f_hall": torch.randn(4, 6, generator=g) if hall else None}
    parts["f_spec"][~parts["has"]] = 0.0
    return parts, torch.tensor([0, 2, 1, 2])


def test_gated_loss_without_spectra_is_cross_entropy():
    parts, y = _parts([False] * 4)
    total, terms = gated_loss(parts, y, LossParams())
    assert torch.equal(total, F.cross_entropy(parts["logits"], y))
    assert terms["ce"] == pytest.approx(float(total))
    assert terms["aux"] == terms["align"] == terms["contrast"] == terms["hallucinate"] == 0.0


def test_gated_loss_terms_and_weights():
    parts, y = _parts([True, False, True, True])
    losses = LossParams(aux_weight=0.5, align_weight=0.3, contrast_weight=0.2, tau=0.2, hallucinate_weight=1.5)
    total, terms = gated_loss(parts, y, losses)
    has = parts["has"]
    expected = {
        "ce": F.cross_entropy(parts["logits"], y),
        "aux": F.cross_entropy(parts["aux_logits"][has], y[has]),
        "align": cosine_alignment(parts["f_rgb"][has], parts["f_spec"][has]),
        "contrast": info_nce(parts["f_rgb"][has], parts["f_spec"][has], 0.2),
        "hallucinate": F.mse_loss(parts["f_hall"][has], parts["f_spec"][has]),
    }
    for name, value in expected.items():
        assert terms[name] == pytest.approx(float(value), rel=1e-6) and terms[name] > 0, name
    weights = {"aux": "aux_weight", "align": "align_weight", "contrast": "contrast_weight",
               "hallucinate": "hallucinate_weight"}
    assert float(total) == pytest.approx(terms["ce"] + sum(getattr(losses, w) * terms[k] for k, w in weights.items()))
    for name, field in weights.items():
        without, _ = gated_loss(parts, y, dataclasses.replace(losses, **{field: 0.0}))
        assert float(total - without) == pytest.approx(getattr(losses, field) * terms[name], rel=1e-5), name
    assert torch.equal(gated_loss(parts, y, NO_EXTRA)[0], expected["ce"])


def test_gated_loss_class_weights_reach_both_cross_entropies():
    parts, y = _parts([True, True, False, True], hall=False)
    w = torch.tensor([1.0, 3.0, 0.5])
    _, terms = gated_loss(parts, y, LossParams(), weight=w)
    has = parts["has"]
    assert terms["ce"] == pytest.approx(float(F.cross_entropy(parts["logits"], y, weight=w)))
    assert terms["aux"] == pytest.approx(float(F.cross_entropy(parts["aux_logits"][has], y[has], weight=w)))
    assert terms["hallucinate"] == 0.0  # no hallucination head


def _gated(rgb_inference: str = "hallucinate") -> nn.Module:
    torch.manual_seed(0)
    return build_model(dataclasses.replace(CFG, rgb_inference=rgb_inference)).eval()


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    spec = torch.randn(4, 5, generator=g)
    spec[3] = float("nan")
    return torch.rand(4, 3, 32, 32, generator=g), torch.tensor([0, 1, 2, 1]), spec, torch.tensor([1, 1, 1, 0]).bool()


def test_hallucinate_term_zero_without_spectra_and_positive_with():
    model = _gated()
    x, y, spec, has = _batch()
    assert gated_loss(model.parts(x), y, LossParams())[1]["hallucinate"] == 0.0
    assert gated_loss(model.parts(x, spec, has), y, LossParams())[1]["hallucinate"] > 0.0


def test_hallucinate_gradient_does_not_reach_the_spectral_branch():
    model = _gated()
    x, y, spec, has = _batch()
    parts = model.parts(x, spec, has)
    only_hall = dataclasses.replace(NO_EXTRA, hallucinate_weight=1.0)
    hall = gated_loss(parts, y, only_hall)[0] - gated_loss(parts, y, NO_EXTRA)[0]  # the weighted MSE alone
    assert float(hall.detach()) > 0
    spectral = list(model.spectral.parameters())
    hallucinator = list(model.hallucinator.parameters())
    grads = torch.autograd.grad(hall, spectral + hallucinator, allow_unused=True)
    assert all(g is None or not g.any() for g in grads[:len(spectral)])
    assert any(g is not None and g.abs().sum() > 0 for g in grads[len(spectral):])


class Recorder(nn.Module):
    """Returns fixed logits from a linear map of the mean pixel and records how it was called."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.lin = nn.Linear(3, 3)
        self.bn = nn.BatchNorm1d(3)
        self.calls: list[tuple] = []

    def forward(self, x, spec=None, has_spec=None):
        self.calls.append((spec, has_spec, self.training))
        return self.bn(self.lin(x.mean(dim=(2, 3))))


def test_make_objective_distils_from_teacher_in_eval_mode_without_spectra_for_student():
    student, teacher = Recorder(0).train(), Recorder(1).train()
    losses = LossParams(kd_alpha=0.25, kd_temperature=2.0)
    objective = make_objective(student, teacher, losses, None)
    assert not teacher.training and not teacher.bn.training
    x, y, spec, has = _batch()
    loss, logits = objective(student, x, y, spec, has)
    (t_spec, t_has, t_training), = teacher.calls
    assert t_spec is spec and t_has is has and not t_training
    (s_spec, s_has, s_training), = student.calls
    assert s_spec is None and s_has is None and s_training  # the student never sees spectra
    with torch.no_grad():
        t_logits = teacher(x, spec, has)
    assert torch.allclose(loss, kd_loss(logits, t_logits, y, 0.25, 2.0))
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert student.lin.weight.grad is not None


def test_make_objective_gated_uses_gated_loss():
    model = _gated("drop")
    x, y, spec, has = _batch()
    losses = LossParams()
    weight = torch.tensor([1.0, 2.0, 0.5])
    loss, logits = make_objective(model, None, losses, weight)(model, x, y, spec, has)
    parts = model.parts(x, spec, has)
    assert torch.equal(logits, parts["logits"])
    assert torch.allclose(loss, gated_loss(parts, y, losses, weight)[0])
    assert float(loss.detach()) > float(F.cross_entropy(logits, y, weight=weight).detach())  # the extra terms count


def test_make_objective_plain_cross_entropy_with_smoothing():
    torch.manual_seed(0)
    model = build_model(dataclasses.replace(CFG, kind="concat")).eval()
    x, y, spec, has = _batch()
    loss, logits = make_objective(model, None, LossParams(), None, label_smoothing=0.1)(model, x, y, spec, has)
    assert torch.equal(logits, model(x, spec, has))
    assert torch.allclose(loss, F.cross_entropy(logits, y, label_smoothing=0.1))


def test_loss_params_validation_names_the_key():
    with pytest.raises(ValueError, match=r"kd_alpha=1\.5"):
        LossParams(kd_alpha=1.5)
    with pytest.raises(ValueError, match=r"tau=0\.0"):
        LossParams(tau=0.0)
    with pytest.raises(ValueError, match="hallucinate_weight=-1"):
        LossParams(hallucinate_weight=-1.0)
