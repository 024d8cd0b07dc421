"""Fleet training: each member equals its entity trained alone, and a fleet resumes."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny
from tests import fakes
from tsad_jax import experiment
from tsad_jax import fleet
from tsad_jax import run_setup
from tsad_jax import summaries
from tsad_jax import train
from tsad_jax.data import DataError

ROOT = pathlib.Path(__file__).resolve().parent.parent
# SMAP channels of 2880, 705 and 762 training points: 11, 3 and 3 steps an epoch.
CHANNELS = ("A-1", "A-5", "A-8")
OVERRIDES = {"data.train_stride": 8, "train.max_epochs": 5, "train.patience": 1,
             "optim.schedule": "step", "optim.decay_epochs": 2,
             "threshold.methods": "pot,percentile"}


def _config(data_root: pathlib.Path, entity: str = ""):
  config = tiny.get_config("smap")
  config.data.root = str(data_root / "SMAP_MSL")
  config.data.entity = entity
  for field, value in OVERRIDES.items():
    section, name = field.split(".")
    config[section][name] = value
  return config


def _max_difference(a, b) -> float:
  return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def _history(run_dir: pathlib.Path) -> list[dict]:
  return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def fleet_runs(data_root, tmp_path_factory):
  """The fleet as a user runs it, `python -m launch.train_fleet`, on 4 forced host devices:
  the 3 members and an idle fourth split over them. (The other tests train on 1 device.)"""
  workdir = tmp_path_factory.mktemp("fleet")
  command = [sys.executable, "-m", "launch.train_fleet", "--config=configs/tiny.py:smap",
             f"--workdir={workdir}", f"--config.data.root={data_root / 'SMAP_MSL'}",
             f"--config.data.entities={','.join(CHANNELS)}"]
  command += [f"--config.{field}={value}" for field, value in OVERRIDES.items()]
  done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600,
                        env={**os.environ, "JAX_PLATFORMS": "cpu",
                             "XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
  assert done.returncode == 0, done.stderr[-3000:]
  run_dirs = {name: next((workdir / "smap" / name / "lstm_ae").iterdir()) for name in CHANNELS}
  return workdir, run_dirs, done.stdout


def test_each_member_equals_its_entity_trained_alone(fleet_runs, data_root, tmp_path):
  workdir, run_dirs, stdout = fleet_runs
  assert len({d.name for d in run_dirs.values()}) == 1  # one run id for the fleet
  steps_per_epoch, stopped_early = set(), False
  for name, run_dir in run_dirs.items():
    alone = experiment.train_and_evaluate(_config(data_root, name), tmp_path)
    assert _max_difference(train.load_params(run_dir), train.load_params(alone)) < 1e-5, name
    history, history_alone = _history(run_dir), _history(alone)
    assert [h["step"] for h in history] == [h["step"] for h in history_alone], name
    np.testing.assert_allclose([h["val_loss"] for h in history],
                               [h["val_loss"] for h in history_alone], rtol=1e-5, err_msg=name)
    steps_per_epoch.add(history[0]["step"])
    stopped_early |= len(history) < OVERRIDES["train.max_epochs"]
    assert name in stdout and run_dir.name in stdout
  # The check means something only if the members' epochs differ in length and one
  # of them stopped early while the others went on.
  assert len(steps_per_epoch) > 1 and stopped_early
  table = (workdir / "smap" / "fleets" / f"lstm_ae-{run_dir.name}.csv").read_text()
  assert all(name in table for name in CHANNELS)


def test_a_member_run_folder_is_an_ordinary_run(fleet_runs):
  _, run_dirs, _ = fleet_runs
  run_dir = run_dirs["A-1"]
  summary = summaries.load_summary(run_dir)
  assert summary["entities"] == ["A-1"] and summary["training"]["epochs"] == 5
  rescored, _ = experiment.evaluate_run(run_dir)
  assert summaries.same_figures(summary, rescored) == []


def test_an_interrupted_fleet_resumes_to_the_same_parameters(fleet_runs, data_root, tmp_path):
  _, run_dirs, _ = fleet_runs
  config = _config(data_root)
  config.data.entities = ",".join(CHANNELS)
  config.train.checkpoint_every = 4
  first = fleet.train_fleet(config, tmp_path, stop_after_steps=13)
  assert {r.status for r in first} == {"stopped after 13 steps", "trained"}
  config.run_id = first[0].run_dir.name
  resumed = fleet.train_fleet(config, tmp_path)
  assert [r.status for r in resumed] == [
      "trained" if r.status.startswith("stopped") else "already trained" for r in first]
  for r in resumed:
    assert _max_difference(train.load_params(r.run_dir),
                           train.load_params(run_dirs[r.name])) < 1e-5, r.name


def test_bad_fleet_requests_are_refused(data_root, tmp_path):
  config = _config(data_root)
  with pytest.raises(ValueError, match="data.entities is empty"):
    fleet.train_fleet(config, tmp_path)
  config.data.entities = "A-1,Z-9"
  with pytest.raises(DataError, match="Z-9"):
    fleet.train_fleet(config, tmp_path)
  synthetic = tiny.get_config()
  synthetic.data.entities = "all"
  with pytest.raises(DataError, match="several entities"):
    fleet.train_fleet(synthetic, tmp_path)
  with pytest.raises(ValueError, match="launch.train_fleet"):
    experiment.train_and_evaluate(synthetic, tmp_path)
  assert not any(tmp_path.iterdir())  # nothing written


def test_a_diverging_member_stops_alone_and_stays_stopped_on_resume(tmp_path):
  config = tiny.get_config()
  config.optim.max_consecutive_nonfinite = 3
  setups = []
  for name in ("calm", "wild"):
    member = tiny.get_config()
    member.data.entity = name
    setups.append(run_setup.build(member))
  setups[1].prepared.train[:, 0] = 1000.0  # marks the windows whose loss turns NaN
  lib = setups[0].model_lib

  def nan_on_marked(model, params, windows, *, rng, train):
    value, aux = lib.loss(model, params, windows, rng=rng, train=train)
    return value * jnp.where(train & (windows.max() > 500.0), jnp.nan, 1.0), aux

  broken = fakes.model_file(loss=nan_on_marked, score=lib.score, SCORES_EVERY_POINT=True)
  setups = [dataclasses.replace(s, model_lib=broken) for s in setups]
  run_dirs = [tmp_path / s.config.data.entity for s in setups]
  calm, wild = fleet.fit(config, setups, run_dirs)
  assert isinstance(calm, train.FitResult) and calm.finished
  assert len(calm.history) == config.train.max_epochs and calm.nonfinite_steps == 0
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(calm.params))
  assert isinstance(wild, str) and "wild" in wild and "learning_rate" in wild
  assert "diverged" in _history(run_dirs[1])[-1]
  _, again = fleet.fit(config, setups, run_dirs)  # resumed: still diverged, not retrained
  assert again == wild
