"""README freshness: every generated block of README.md equals what tools/results_table.py writes from metrics/."""

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("results_table", REPO / "tools" / "results_table.py")
results_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(results_table)


@pytest.mark.parametrize("block", sorted(results_table.BLOCKS))
def test_readme_block_matches_the_committed_metrics(block):
    text = (REPO / "README.md").read_text()
    begin, end = results_table.BLOCKS[block]
    assert begin in text and end in text, f"README.md has no {block} block"
    shown = text.split(begin, 1)[1].split(end, 1)[0].strip("\n").splitlines()
    expected = results_table.all_tables(REPO / "metrics")[block]
    assert shown == expected, (f"README.md's {block} block is stale: "
                               "run `python tools/results_table.py --write README.md` after `dvc repro`")


def test_readme_figures_in_the_prose_match_the_committed_metrics():
    text = (REPO / "README.md").read_text()
    assert len(results_table.FIGURE.findall(text)) >= 20  # the current run's figures quoted outside the tables
    fresh = results_table.refresh_figures(text, REPO / "metrics")
    stale = [f"line {i + 1}: {old.strip()}" for i, (old, new) in
             enumerate(zip(text.splitlines(), fresh.splitlines(), strict=True)) if old != new]
    assert not stale, ("README.md quotes figures that differ from metrics/: run "
                       "`python tools/results_table.py --write README.md`\n" + "\n".join(stale[:10]))
