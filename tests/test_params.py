"""Tests of the params.yaml reader: unknown and mistyped keys fail with their names."""

import pytest

from specmorph.params import ParamsError, Shared, build, load_params, profile_block, section, shared
from specmorph.sky.survey import SkyConfig


def test_build_accepts_known_keys_and_ints_for_floats():
    cfg = build(SkyConfig, {"n_califa": 5, "gz2_footprint_fraction": 1}, "sky.tiny")
    assert cfg.n_califa == 5 and cfg.gz2_footprint_fraction == 1.0


def test_unknown_key_is_named():
    with pytest.raises(ParamsError, match=r"sky\.tiny\.n_calfa"):
        build(SkyConfig, {"n_calfa": 5}, "sky.tiny")


def test_wrong_type_is_named():
    with pytest.raises(ParamsError, match=r"sky\.tiny\.n_califa = 'many' should be of type int"):
        build(SkyConfig, {"n_califa": "many"}, "sky.tiny")


def test_missing_section_and_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 1\n")
    with pytest.raises(ParamsError, match="section 'sky'"):
        section(load_params(path), "sky")
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_repository_params_build(pytestconfig):
    params = load_params(pytestconfig.rootpath / "params.yaml")
    for profile in ("tiny", "default"):
        build(SkyConfig, section(params, "sky")[profile], f"sky.{profile}")


def test_shared_keys_are_typed_and_defaulted():
    top = shared({"seed": 7, "model": "concat", "sky": {}})
    assert top == Shared(seed=7, profile="default", embedder="pca", model="concat", executor="local")


@pytest.mark.parametrize(("params", "needle"), [
    ({"model": "resnet"}, "model = 'resnet'; expected one of rgb_only | concat | kd | gated"),
    ({"embedder": "umap"}, "embedder = 'umap'; expected one of pca | siamese | sae | dsca"),
    ({"profile": "huge"}, "profile = 'huge'; expected one of tiny | default | full"),
    ({"executor": "slurm"}, "executor = 'slurm'; expected one of local | dask"),
    ({"seed": "42"}, "seed = '42' should be of type int"),
    ({"modle": "kd"}, "unknown top-level key(s) modle"),
])
def test_shared_keys_fail_by_name(params, needle):
    with pytest.raises(ParamsError) as err:
        shared(params)
    assert needle in str(err.value), str(err.value)


def test_profile_block_follows_the_checked_profile():
    params = {"profile": "tiny", "sky": {"tiny": {"n_califa": 3}, "default": {}}}
    assert profile_block(params, "sky") == ({"n_califa": 3}, "sky.tiny")
    with pytest.raises(ParamsError, match="profile = 'huge'"):
        profile_block({**params, "profile": "huge"}, "sky")


def test_repository_top_level_keys_are_known(pytestconfig):
    shared(load_params(pytestconfig.rootpath / "params.yaml"))
