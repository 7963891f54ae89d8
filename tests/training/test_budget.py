"""The per-profile budgets of params.yaml: every profile builds, bad values fail by name."""

from pathlib import Path

import pytest
import torch

from specmorph.models import build_model
from specmorph.models.config import ModelConfig
from specmorph.params import ParamsError, build, load_params, profile_block
from specmorph.training.budget import Budget, CvtBudget, CvtSection, TrainSection

PARAMS = load_params(Path(__file__).resolve().parents[2] / "params.yaml")


@pytest.mark.parametrize("profile", [k for k, v in PARAMS["sky"].items() if isinstance(v, dict)])  # sky.<key>: dials
def test_every_profile_has_a_budget_that_builds_a_network(profile):
    params = {**PARAMS, "profile": profile}
    budget = build(Budget, *profile_block(params, "train.budget"))
    cvt = build(CvtBudget, *profile_block(params, "cvt.budget"))
    for cfg in (ModelConfig(kind="rgb", n_classes=8, label_cols=tuple("abcdefgh"), image_size=budget.image_size,
                            depth=budget.depth, width=budget.width),
                ModelConfig(kind="cvt", n_classes=5, label_cols=tuple("abcde"), image_size=cvt.image_size,
                            cvt_dims=cvt.dims, cvt_depths=cvt.depths, cvt_heads=cvt.heads)):
        model = build_model(cfg).eval()
        with torch.no_grad():
            assert model(torch.rand(2, 3, cfg.image_size, cfg.image_size)).shape == (2, cfg.n_classes)


def test_profile_block_names_what_is_missing():
    with pytest.raises(ParamsError, match=r"profile 'full' has no block train\.budget\.full; have tiny"):
        profile_block({**PARAMS, "profile": "full", "train": {"budget": {"tiny": {}}}}, "train.budget")
    with pytest.raises(ParamsError, match=r"'train\.budget' is missing"):
        profile_block({"train": {}}, "train.budget")
    with pytest.raises(ParamsError, match=r"section 'cvt' is missing"):
        profile_block({}, "cvt.budget")


def test_bad_budgets_fail_by_name():
    with pytest.raises(ParamsError, match=r"train\.budget\.default\.epoch\b"):
        build(Budget, {"epoch": 3}, "train.budget.default")
    with pytest.raises(ParamsError, match=r"train\.budget\.default\.width = '16' should be of type int"):
        build(Budget, {"width": "16"}, "train.budget.default")
    with pytest.raises(ValueError, match="Budget out of range: patience=-1"):
        Budget(patience=-1)
    with pytest.raises(ValueError, match=r"CvtBudget out of range: dims="):
        CvtBudget(dims=(8, 16), depths=(1, 1, 1))


@pytest.mark.parametrize(("cls", "name"), [(TrainSection, "train"), (CvtSection, "cvt")])
def test_the_sections_of_params_yaml_build_and_bad_keys_fail_by_dotted_name(cls, name):
    section = build(cls, PARAMS[name], name)
    assert section.budget == PARAMS[name]["budget"]
    with pytest.raises(ParamsError, match=rf"unknown key\(s\) {name}\.lr_max"):
        build(cls, {**PARAMS[name], "lr_max": 0.1}, name)
    with pytest.raises(ParamsError, match=rf"{name}\.batch_size = '32' should be of type int"):
        build(cls, {**PARAMS[name], "batch_size": "32"}, name)
    with pytest.raises(ValueError, match=rf"{name} out of range: crop_fraction=1.5"):
        build(cls, {**PARAMS[name], "crop_fraction": 1.5}, name)
