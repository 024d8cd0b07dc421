"""A training process killed with SIGKILL, between checkpoints or while writing one, resumes to
the run an uninterrupted process makes: the same parameters, metrics.json and summary.json
(timings aside)."""

import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from tsad_jax import train

ROOT = pathlib.Path(__file__).resolve().parent.parent
# configs/tiny.py: 14 steps an epoch; 600 steps take several seconds after compiling, so a
# kill lands mid-training. A checkpoint every 7 steps gives many writes to land in.
FIELDS = ["--config.train.max_epochs=40", "--config.train.patience=0",
          "--config.train.checkpoint_every=7", "--config.train.keep_checkpoints=2"]
TIMEOUT = 300


def _command(workdir: pathlib.Path) -> list[str]:
  return [sys.executable, "-m", "launch.train", "--config=configs/tiny.py",
          f"--workdir={workdir}", "--config.run_id=run", "--new_run", *FIELDS]


def _start(workdir: pathlib.Path) -> subprocess.Popen:
  return subprocess.Popen(_command(workdir), cwd=ROOT, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env={**os.environ, "JAX_PLATFORMS": "cpu"})


def _checkpoints(workdir: pathlib.Path) -> list[str]:
  return [p.name for p in workdir.glob("*/*/*/run/checkpoints/*")]


def _kill_when(process: subprocess.Popen, workdir: pathlib.Path, ready, *,
               delay: float = 0.0) -> list[str]:
  """SIGKILLs `process` `delay` seconds after `ready(checkpoint folder names)`; returns
  those names."""
  deadline = time.monotonic() + TIMEOUT
  while time.monotonic() < deadline and process.poll() is None:
    names = _checkpoints(workdir)
    if ready(names):
      time.sleep(delay)
      assert process.poll() is None, "the run ended before it was killed"
      process.send_signal(signal.SIGKILL)
      process.communicate()
      assert process.returncode == -signal.SIGKILL
      return names
    time.sleep(0.001)
  process.kill()
  _, err = process.communicate()
  pytest.fail(f"the run ended before the moment to kill it came:\n{err[-2000:]}")


def _untimed(tree):
  if isinstance(tree, dict):
    return {k: _untimed(v) for k, v in tree.items() if "second" not in k}
  if isinstance(tree, list):
    return [_untimed(v) for v in tree]
  return tree


def _run_dir(workdir: pathlib.Path) -> pathlib.Path:
  (run_dir,) = workdir.glob("*/*/*/run")
  return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """An uninterrupted run, and runs killed (between checkpoints; while writing one) and
  resumed by the same command."""
  folder = tmp_path_factory.mktemp("kill")
  whole = _start(folder / "whole")
  between, writing = _start(folder / "between"), _start(folder / "writing")
  seen = {
      # Two checkpoints are there and no write is under way: between two checkpoints.
      "between": _kill_when(between, folder / "between", lambda names: len(
          [n for n in names if n.isdigit()]) >= 2 and not any("tmp" in n for n in names),
          delay=random.uniform(0.0, 0.5)),
      # A checkpoint's temporary folder exists: it is being written.
      "writing": _kill_when(writing, folder / "writing",
                            lambda names: any("tmp" in n for n in names)),
  }
  for name in ("between", "writing"):
    resumed = subprocess.run(_command(folder / name), cwd=ROOT, capture_output=True, text=True,
                             timeout=TIMEOUT, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
  out, err = whole.communicate(timeout=TIMEOUT)
  assert whole.returncode == 0, err[-3000:]
  return folder, seen


@pytest.mark.parametrize("moment", ["between", "writing"])
def test_a_killed_run_resumes_to_the_uninterrupted_one(runs, moment):
  folder, seen = runs
  assert seen[moment], "killed before any checkpoint existed"
  whole, resumed = _run_dir(folder / "whole"), _run_dir(folder / moment)
  for x, y in zip(jax.tree.leaves(train.load_params(whole)),
                  jax.tree.leaves(train.load_params(resumed)), strict=True):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  for name in ("metrics.json", "summary.json"):
    assert _untimed(json.loads((whole / name).read_text())) == _untimed(
        json.loads((resumed / name).read_text())), name
