"""dvc.yaml lists, for every stage, each specmorph module its script imports, directly or not.

A module missing from a stage's `deps` is a change DVC cannot see: the stage would not re-run after
an edit that changes its output.
"""

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def module_file(name: str) -> Path | None:
    """The source file of a specmorph module or package, or None if `name` is not one."""
    for path in (SRC / f"{name.replace('.', '/')}.py", SRC / name.replace(".", "/") / "__init__.py"):
        if path.is_file():
            return path
    return None


def specmorph_imports(path: Path) -> set[str]:
    """Modules named by `import specmorph...` / `from specmorph... import x` in a file (x too, if a module)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("specmorph"):
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}"))
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("specmorph"))
    return names


def imported_files(script: Path) -> set[Path]:
    """Every specmorph source file a script imports, transitively (package __init__ files left out)."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        for name in specmorph_imports(todo.pop()):
            path = module_file(name)
            if path is not None and path not in seen:
                seen.add(path)
                todo.append(path)
    return {p for p in seen if p.name != "__init__.py"}


def test_the_import_walk_finds_known_modules():
    files = {p.relative_to(REPO).as_posix() for p in imported_files(REPO / "stages/segment.py")}
    assert {"src/specmorph/imaging/segment.py", "src/specmorph/io/shards.py", "src/specmorph/executor.py",
            "src/specmorph/errors.py"} <= files
    assert "src/specmorph/models/fusion.py" not in files


@pytest.mark.parametrize("name", list(STAGES))
def test_stage_deps_cover_every_imported_module(name):
    deps = [d.rstrip("/") for d in STAGES[name]["deps"]]
    assert f"stages/{name}.py" in deps
    missing = sorted(
        rel for rel in (p.relative_to(REPO).as_posix() for p in imported_files(REPO / f"stages/{name}.py"))
        if not any(rel == d or rel.startswith(f"{d}/") for d in deps)
    )
    assert not missing, f"dvc.yaml stage {name!r}: add to deps: {missing}"
