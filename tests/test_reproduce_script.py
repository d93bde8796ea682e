"""docs/results/reproduce.sh: keeping unfinished runs so that another checkout continues them."""

import os
import re
import subprocess

from conftest import REPO

from maml_rl.training.log import MOVABLE

SCRIPT = REPO / "docs" / "results" / "reproduce.sh"


def test_the_script_moves_the_files_resuming_needs():
    listed = re.search(r"^MOVABLE=\(([^)]*)\)", SCRIPT.read_text(), re.MULTILINE)
    assert listed is not None
    assert tuple(listed.group(1).split()) == MOVABLE


def test_keep_copies_each_unfinished_run_and_only_its_movable_files(tmp_path):
    runs, kept = tmp_path / "runs", tmp_path / "kept"
    unfinished, finished = runs / "group" / "a-seed1", runs / "group" / "a-seed2"
    for run in (unfinished, finished):
        run.mkdir(parents=True)
        for name in (*MOVABLE, "events.out.tfevents.1"):
            (run / name).write_text(f"{run.name} {name}")
    (finished / "results.json").write_text("{}")
    env = {**os.environ, "RUNS": str(runs), "UNFINISHED": str(kept)}
    done = subprocess.run(["bash", str(SCRIPT), "keep"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert [p.relative_to(kept).as_posix() for p in sorted(kept.glob("*/*"))] == ["group/a-seed1"]
    assert sorted(p.name for p in (kept / "group" / "a-seed1").iterdir()) == sorted(MOVABLE)
    assert (kept / "group" / "a-seed1" / "checkpoint.pt").read_text() == "a-seed1 checkpoint.pt"


def test_a_sweep_first_copies_back_the_kept_runs_its_folder_lacks(tmp_path):
    runs, kept = tmp_path / "runs", tmp_path / "kept"
    for name in ("moved-seed1", "here-seed2"):
        (kept / "plasticity-h16" / name).mkdir(parents=True)
        for file in MOVABLE:
            (kept / "plasticity-h16" / name / file).write_text(f"kept {file}")
    (runs / "plasticity-h16" / "here-seed2").mkdir(parents=True)  # already here: left as it is
    env = {**os.environ, "RUNS": str(runs), "UNFINISHED": str(kept), "PYTHON": "true"}  # sweep.py not run
    done = subprocess.run(
        ["bash", str(SCRIPT), "plasticity-small"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (runs / "plasticity-h16" / "moved-seed1").iterdir()) == sorted(MOVABLE)
    assert list((runs / "plasticity-h16" / "here-seed2").iterdir()) == []
