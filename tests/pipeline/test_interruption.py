"""kill -9 of `dvc repro` in the middle of each long stage, then `dvc repro` again: the same outputs as one clean run.

On the tiny profile, up to `train` (ingest, segment and train are the long stages). The whole process group
is killed (dvc and the stage it runs), as a crash or an out-of-memory kill would. Each stage writes through
`io.atomic` (a hidden work directory or temporary file, renamed only when complete), so a killed stage
leaves nothing under its output names and DVC simply runs it again.

The kill lands while the stage's own command runs, never in DVC's bookkeeping after it: DVC rewrites dvc.lock and
.dvc/tmp/rwlock in place, so a kill inside those few milliseconds leaves a truncated file that DVC refuses to read
(exit 255), whatever the stages do. That is DVC's, not the pipeline's; the README says how to recover from it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TARGET = "train"
KILL_IN = ("ingest", "segment", "train")
AFTER_OUTPUT_S = 0.3  # the kill comes this long after the stage's command first prints (it is past its imports)


def _workspace(root: Path) -> Path:
    """A DVC project (no git) with the repository's pipeline on the tiny profile, one seed."""
    root.mkdir()
    for name in ("dvc.yaml", "stages", "src", "docs"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["profile"] = "tiny"
    params["evaluate"]["seeds"] = [0]
    params["embed"].update(epochs=1, folds=2, knn_k=1, width=8, embed_dim=16)
    params["segment_check"]["real_dir"] = "no_real_set"  # relative: the metrics name it the same in both
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    _dvc(root, "init", "--no-scm", "-q")
    return root


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "DVC_NO_ANALYTICS": "1"}


def _dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    """Runs `dvc args` in root; a failure shows what dvc printed, not only its exit status."""
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=_env(), capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, f"dvc {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def _stage_command(group: int, stage: str) -> psutil.Process | None:
    """The live process running `stages/<stage>.py` in the process group, if any."""
    script = f"stages/{stage}.py"
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if (os.getpgid(proc.pid) == group and proc.info["status"] != psutil.STATUS_ZOMBIE
                    and any(arg.endswith(script) for arg in proc.info["cmdline"] or ())):
                return proc
        except (ProcessLookupError, psutil.Error):
            continue
    return None


def _repro_killed_in(root: Path, stage: str, log: Path) -> bool:
    """Starts `dvc repro`, kills its process group while `stage`'s command runs; False if the run ended first.

    The group is stopped before the kill and the command looked for again, so the kill cannot fall after the command
    has exited (into DVC's writes of dvc.lock and rwlock).
    """
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", TARGET], cwd=root, env=_env(), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    command_line = f"> python stages/{stage}.py"
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        printed = log.read_text()
        if command_line in printed and printed.split(command_line, 1)[1].partition("\n")[2].strip():
            time.sleep(AFTER_OUTPUT_S)
            os.killpg(proc.pid, signal.SIGSTOP)
            if _stage_command(proc.pid, stage) is not None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return True
            os.killpg(proc.pid, signal.SIGCONT)
            break
        time.sleep(0.05)
    proc.wait(timeout=600)
    return False


def _out_hashes(root: Path) -> dict[str, str]:
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    return {f"{name}:{o['path']}": o["md5"] for name, st in lock.items() for o in st.get("outs", [])}


@pytest.mark.slow
def test_killed_runs_resume_to_the_hashes_of_a_clean_run(tmp_path):
    clean = _workspace(tmp_path / "clean")
    _dvc(clean, "repro", TARGET)
    killed = _workspace(tmp_path / "killed")
    interrupted = [stage for stage in KILL_IN if _repro_killed_in(killed, stage, tmp_path / f"{stage}.log")]
    assert interrupted, "no stage was still running when killed"
    _dvc(killed, "repro", TARGET)
    assert _dvc(killed, "status", TARGET).stdout.strip().endswith("up to date.")
    assert _out_hashes(killed) == _out_hashes(clean)
    leftovers = [p for p in (killed / "data").rglob("*") if p.name.endswith((".partial", ".tmp"))]
    assert not [p for p in leftovers if p.is_dir()], leftovers  # killed work directories are cleaned on re-run
