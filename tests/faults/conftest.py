"""The fault-injection tally: every case records its outcome through `fault_tally`; `make test` prints the sum."""

from collections import Counter

import pytest

_TALLY: list[tuple[str, str, str]] = []  # (case, expected outcome, observed outcome)


@pytest.fixture
def fault_tally() -> list[tuple[str, str, str]]:
    return _TALLY


def pytest_terminal_summary(terminalreporter):
    if not _TALLY:
        return
    observed = Counter(got if got in ("error", "handled", "skip") else "crash" for _, _, got in _TALLY)
    terminalreporter.section("fault injection")
    terminalreporter.write_line(
        f"{len(_TALLY)} faulty inputs tried: {observed['error']} clear errors, {observed['handled']} handled by a "
        f"documented rule, {observed['skip']} skipped and listed, {observed['crash']} crashes or unclear errors")
    for name, want, got in _TALLY:
        if want != got:
            terminalreporter.write_line(f"  {name}: expected {want}, got {got}")
