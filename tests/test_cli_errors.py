"""Every launcher reports a known error (bad data, bad config value, missing run) as one line
and a non-zero exit, with no traceback unless --verbose asks for it."""

import os
import pathlib
import subprocess
import sys

import pytest

from configs import tiny
from tsad_jax import runs

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _launch(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                        timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"})


@pytest.mark.parametrize("args, needle", [
    (["launch.train", "--config=configs/tiny.py", "--config.run_id=no-such-run"],
     "There is no run"),
    (["launch.train", "--config=configs/tiny.py", "--config.threshold.methods=bogus"],
     "config.threshold.methods: unknown 'bogus'"),
    (["launch.train", "--config=configs/tiny.py", "--config.data.dataset=csv"],
     "data.csv.train_file is empty"),
    (["launch.evaluate", "--run=nowhere"], "nowhere/config.json not found"),
])
def test_a_known_error_is_one_line_and_exit_status_2(tmp_path, args, needle):
  done = _launch(*args, f"--workdir={tmp_path}" if args[0] == "launch.train" else "--noverbose")
  assert done.returncode == 2, done.stderr
  last = done.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ") and needle in last
  assert "Traceback" not in done.stderr
  assert not list(tmp_path.rglob("checkpoints"))  # nothing was trained


def test_verbose_shows_the_traceback():
  done = _launch("launch.evaluate", "--run=nowhere", "--verbose")
  assert done.returncode != 0 and "Traceback" in done.stderr and "FileNotFoundError" in done.stderr


def test_an_unknown_run_id_is_refused_unless_a_new_run_is_asked_for(tmp_path):
  config = tiny.get_config()
  config.run_id = "named"
  with pytest.raises(FileNotFoundError, match="add --new_run"):
    runs.open_run(tmp_path, config, new_named=False)
  assert not list(tmp_path.rglob("*"))
  created = runs.open_run(tmp_path, config, new_named=True)
  assert created.name == "named" and (created / runs.CONFIG_FILE).exists()
  assert runs.open_run(tmp_path, config, new_named=False) == created  # it exists now: resumed
