"""Tests of the params.yaml reader: unknown and mistyped keys fail with their names."""

import pytest

from specmorph.params import ParamsError, build, load_params, section
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
