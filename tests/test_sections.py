"""The typed params sections of specmorph.sections: params.yaml builds; bad keys, types and values fail by name."""

from pathlib import Path

import pytest

from specmorph.params import ParamsError, build, load_params
from specmorph.sections import CrossmatchSection, EvaluateSection, LabelsSection, PcaRfSection, SpectraSection

PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
SECTIONS = [(CrossmatchSection, "crossmatch", "radius_arcsec", 0.0), (LabelsSection, "labels", "test_frac", 1.0),
            (SpectraSection, "spectra", "bin_factor", 0), (PcaRfSection, "pca_rf", "n_estimators", 0),
            (EvaluateSection, "evaluate", "bootstrap", 0)]


@pytest.mark.parametrize(("cls", "name", "key", "bad"), SECTIONS)
def test_params_yaml_builds_and_bad_values_fail_by_dotted_name(cls, name, key, bad):
    section = build(cls, PARAMS[name], name)
    assert getattr(section, key) == PARAMS[name][key]
    with pytest.raises(ParamsError, match=rf"unknown key\(s\) {name}\.{key}s\b"):
        build(cls, {**PARAMS[name], f"{key}s": 1}, name)
    with pytest.raises(ParamsError, match=rf"{name}\.{key} = 'x' should be of type"):
        build(cls, {**PARAMS[name], key: "x"}, name)
    with pytest.raises(ParamsError, match=rf"params.yaml: {name}\.{key} = {bad!r} out of range"):
        build(cls, {**PARAMS[name], key: bad}, name)


def test_lists_become_tuples_and_repeated_seeds_are_refused():
    assert build(EvaluateSection, {"seeds": [2, 0]}, "evaluate").seeds == (2, 0)
    assert build(SpectraSection, {"window": [3800, 7200]}, "spectra").window == (3800, 7200)
    with pytest.raises(ParamsError, match=r"evaluate\.seeds = \(1, 1\) out of range"):
        build(EvaluateSection, {"seeds": [1, 1]}, "evaluate")
