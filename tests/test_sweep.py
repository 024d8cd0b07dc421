"""Sweeps: grid expansion, trial names, ranking, resume, the vmapped quick stage, end to end."""

import csv
import json
import math
import pathlib
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from numpy.testing import assert_allclose
import pytest

from configs import tiny
from configs.sweeps import demo_quick
from tsad_jax import config_names
from tsad_jax import models
from tsad_jax import optim as optim_lib
from tsad_jax import run_setup
from tsad_jax import summaries
from tsad_jax import sweep
from tsad_jax import train


def _read_results(folder):
  with (folder / "results.csv").open() as f:
    return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
  """configs/sweeps/demo_quick.py run by the launcher: (workdir, its stdout)."""
  workdir = tmp_path_factory.mktemp("sweep")
  done = subprocess.run(
      [sys.executable, "-m", "launch.sweep", "--config=configs/sweeps/demo_quick.py",
       f"--workdir={workdir}"], capture_output=True, text=True, check=True)
  return workdir, done.stdout


def test_grid_expansion_and_trial_names_are_deterministic():
  grid = {"optim": {"learning_rate": (1e-3, 3e-3)}, "model.hidden_size": [16, 32],
          "optim.grad_clip_norm": (1.0, 10.0)}
  trials = sweep.make_trials(grid)
  assert len(trials) == 8
  assert trials[0].overrides == {"model.hidden_size": 16, "optim.grad_clip_norm": 1.0,
                                 "optim.learning_rate": 1e-3}
  assert trials[1].overrides["optim.learning_rate"] == 3e-3  # the last path varies fastest
  assert [t.name for t in trials] == [t.name for t in sweep.make_trials(grid)]
  assert len({t.name for t in trials}) == 8
  reordered = {"optim.grad_clip_norm": (1.0, 10.0), "model": {"hidden_size": (16, 32)},
               "optim.learning_rate": [1e-3, 3e-3]}
  assert sweep.make_trials(reordered) == trials
  # Pinned: a change of naming would orphan every existing sweep's runs.
  assert sweep.trial_name(0, {"optim.learning_rate": 1e-3}) == "trial-000-555bf51c"
  assert sweep.make_trials({}) == [sweep.Trial(0, sweep.trial_name(0, {}), {})]


def test_ranking_follows_the_mode_and_puts_failures_last():
  rows = [{"trial": f"t{i}", "index": i, "value": v}
          for i, v in enumerate([0.5, float("nan"), 0.2, 0.9, 0.2])]
  assert [r["trial"] for r in sweep.rank(rows, "min")] == ["t2", "t4", "t0", "t3", "t1"]
  ranked = sweep.rank(rows, "max")
  assert [r["trial"] for r in ranked] == ["t3", "t0", "t2", "t4", "t1"]
  assert [r["rank"] for r in ranked] == [1, 2, 3, 4, 5]
  assert sweep.select_top(ranked, 2) == ["t3", "t0"]
  assert sweep.select_top(ranked, 9) == ["t3", "t0", "t2", "t4"]
  summary = {"training": {"best_val_loss": 0.1}, "threshold_free": {"mean": {"VUS-PR": 0.7}},
             "thresholds": {"pot": {"mean": {"F1": 0.4}}}}
  assert sweep.metric_value(summary, "best_val_loss") == 0.1
  assert sweep.metric_value(summary, "oracle:VUS-PR") == 0.7
  assert sweep.metric_value(summary, "oracle:thresholds/pot/mean/F1") == 0.4
  assert math.isnan(sweep.metric_value(summary, "oracle:thresholds/spot/mean/F1"))


def _spec(**fields):
  spec = demo_quick.get_config()
  for key, value in fields.items():
    spec[key] = value
  return spec


@pytest.mark.parametrize("fields,message", [
    ({"grid": ml_collections.ConfigDict({"optim": {"learnin_rate": (1e-3,)}})},
     r"sweep.grid.optim.learnin_rate: the base config has no field 'optim.learnin_rate'"),
    ({"grid": ml_collections.ConfigDict({"model.hidden_size": (8, 16.5)},
                                        allow_dotted_keys=True)},
     r"sweep.grid.model.hidden_size: model.hidden_size=16.5 does not fit"),
    ({"grid": ml_collections.ConfigDict({"model.hidden_size": 8}, allow_dotted_keys=True)},
     r"sweep.grid.model.hidden_size: give a non-empty list"),
    ({"grid": ml_collections.ConfigDict({"optim": (1e-3,)})}, r"'optim' is a section"),
    ({"overrides": ml_collections.ConfigDict({"train": {"epochs": 3}})},
     r"sweep.overrides.train.epochs: the base config has no field"),
    ({"base": "no_such_config"}, r"no config configs/no_such_config.py; choose from .*demo"),
    ({"metric": "oracle:VUS_PR", "mode": "max"},
     r"sweep.metric='oracle:VUS_PR': after oracle: use one of .*VUS-PR"),
    ({"metric": "VUS-PR", "mode": "max"},
     r"sweep.metric='VUS-PR' ranks trials by the test series and its labels: rank by "
     r"best_val_loss .* or name it oracle:VUS-PR"),
    ({"metric": "thresholds/pot/mean/F1", "mode": "max"}, r"name it oracle:thresholds/pot"),
    ({"mode": "up"}, r"sweep.mode='up': say which way is better"),
    ({"quick_mode": "max"}, r"best_val_loss is a loss: set sweep.quick_mode='min'"),
    ({"grid": ml_collections.ConfigDict({"optim": {"schedule": ("constant", "often")}})},
     r"optim.schedule='often'"),
])
def test_a_bad_spec_is_a_clear_error_before_anything_trains(tmp_path, fields, message):
  with pytest.raises(ValueError, match=message):
    sweep.run(_spec(**fields), tmp_path)
  assert not any(tmp_path.iterdir())


SPECS = sorted(p.stem for p in pathlib.Path(sweep.__file__).parent.parent.glob(
    "configs/sweeps/*.py") if p.stem not in ("__init__", "common"))


@pytest.mark.parametrize("name", SPECS)
def test_every_shipped_spec_gives_trials_whose_model_builds(name):
  spec = config_names.load(f"sweeps.{name}")
  trials = sweep.check_spec(spec)
  assert len(trials) > spec.top_k  # otherwise the quick stage chooses nothing
  for trial in trials:
    for stage in sweep.stage_metrics(spec):
      config = sweep.trial_config(spec, trial, stage=stage)
      models.get(config.model.name).build(config.model, num_features=3,
                                          window=config.data.window)


def test_launcher_sweeps_and_reports_the_best_of_its_results(swept):
  workdir, stdout = swept
  folder = workdir / "sweeps" / "demo_quick"
  rows = _read_results(folder)
  quick = [r for r in rows if r["stage"] == "quick"]
  full = [r for r in rows if r["stage"] == "full"]
  assert [r["stage"] for r in rows] == ["full"] * 2 + ["quick"] * 4
  assert {r["how"] for r in quick} == {"vmapped"} and {r["how"] for r in full} == {"run"}
  assert {(r["model.hidden_size"], r["optim.learning_rate"]) for r in quick} == {
      ("8", "0.001"), ("8", "0.01"), ("16", "0.001"), ("16", "0.01")}
  losses = [float(r["value"]) for r in quick]
  assert losses == sorted(losses) and [r["rank"] for r in quick] == ["1", "2", "3", "4"]
  assert {r["trial"] for r in full} == {r["trial"] for r in quick[:2]}  # the top 2 trained
  full_losses = [float(r["value"]) for r in full]
  assert full_losses == sorted(full_losses)  # ranked by validation loss, never by test labels
  best = json.loads((folder / "best.json").read_text())
  assert best["trial"] == full[0]["trial"] and best["run_dir"] == full[0]["run_dir"]
  assert best["metric"] == "best_val_loss" and best["value"] == pytest.approx(min(full_losses))
  summary = summaries.load_summary(best["run_dir"])  # an ordinary run folder
  assert summary["training"]["best_val_loss"] == pytest.approx(best["value"])
  assert summary["training"]["epochs"] == 3
  assert f"Best: {best['trial']}" in stdout and f"--run={best['run_dir']}" in stdout


def test_a_stopped_sweep_resumes_and_skips_finished_trials(swept, tmp_path):
  workdir, _ = swept
  shutil.copytree(workdir / "sweeps", tmp_path / "sweeps")
  folder = tmp_path / "sweeps" / "demo_quick"
  full = [r for r in _read_results(folder) if r["stage"] == "full"]
  first, second = (folder / pathlib.Path(r["run_dir"]).relative_to(
      workdir / "sweeps" / "demo_quick") for r in full)
  for run_dir in (first, second):  # as if killed before both full trials finished
    (run_dir / "summary.json").unlink()
  (folder / "best.json").unlink()
  vmapped = folder / "quick" / "vmapped.json"
  vmapped_mtime = vmapped.stat().st_mtime_ns

  stopped = sweep.run(demo_quick.get_config(), tmp_path, stop_after_trials=1)
  assert not stopped.finished and stopped.best is None
  assert len(stopped.trained) == 1 and stopped.trained[0].startswith("full/")
  assert not (folder / "best.json").exists()
  done = next(d for d in (first, second) if (d / "summary.json").exists())
  done_mtime = (done / "summary.json").stat().st_mtime_ns

  resumed = sweep.run(demo_quick.get_config(), tmp_path)
  assert resumed.finished and resumed.trained == [f"full/{({first, second} - {done}).pop().name}"]
  assert (done / "summary.json").stat().st_mtime_ns == done_mtime  # not retrained
  assert vmapped.stat().st_mtime_ns == vmapped_mtime  # the quick stage was not either
  assert json.loads((folder / "best.json").read_text())["trial"] == full[0]["trial"]
  assert sweep.run(demo_quick.get_config(), tmp_path).trained == []


def test_vmapped_quick_stage_matches_sequential_training(swept, tmp_path):
  workdir, _ = swept
  spec = demo_quick.get_config()
  records = json.loads((workdir / "sweeps/demo_quick/quick/vmapped.json").read_text())
  group = [t for t in sweep.make_trials(spec.grid) if t.overrides["model.hidden_size"] == 8]
  assert len(group) == 2 and all(t.name in records for t in group)  # trained together
  # One of the two trained alone (both would double the time): the one with the larger
  # learning rate, where a mixed-up slot or a wrongly applied rate shows most.
  trial = max(group, key=lambda t: t.overrides["optim.learning_rate"])
  config = sweep.trial_config(spec, trial, stage=sweep.QUICK)
  setup = run_setup.build(config)
  alone = train.fit(config, setup.prepared, tmp_path, model_lib=setup.model_lib,
                    model=setup.model).history
  together = records[trial.name]["history"]
  assert len(together) == len(alone) == spec.quick_epochs
  for key in ("val_loss", "train_loss"):
    assert_allclose([h[key] for h in together], [h[key] for h in alone], rtol=1e-5)
  other = next(t for t in group if t != trial)
  assert records[other.name]["history"][0]["val_loss"] != pytest.approx(alone[0]["val_loss"])


def test_stacked_optimizer_matches_make_optimizer():
  """Every combination of the vmapped scalars, a schedule, and a non-finite step."""
  base = tiny.get_config().optim
  base.schedule = "cosine"
  scalars = [(1e-3, 10.0, 0.0), (1e-2, 0.0, 0.0), (3e-2, 0.05, 1e-3)]
  params = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3), "b": jnp.ones(3)}
  grads = [jax.tree.map(lambda p, i=i: jnp.sin(p * (i + 2.0)) * (i + 1.0), params)
           for i in range(4)]
  grads[2] = jax.tree.map(lambda g: g.at[0].set(jnp.nan), grads[2])
  kwargs = {"steps_per_epoch": 2, "total_steps": 4}

  def run(tx, opt_state, params):
    for g in grads:
      updates, opt_state = tx.update(g, opt_state, params)
      params = jax.tree.map(lambda p, u: p + u, params, updates)
    return params

  tx = sweep.stacked_optimizer(base, **kwargs)
  state = tx.init(params)
  states = [state._replace(hyperparams={"learning_rate": jnp.float32(lr),
                                        "grad_clip_norm": jnp.float32(clip),
                                        "l2": jnp.float32(l2)}) for lr, clip, l2 in scalars]
  stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *states)
  together = jax.jit(jax.vmap(lambda s: run(tx, s, params)))(stacked)
  for i, (lr, clip, l2) in enumerate(scalars):
    optim = ml_collections.ConfigDict(base.to_dict())
    optim.learning_rate, optim.grad_clip_norm, optim.l2 = lr, clip, l2
    alone_tx = optim_lib.make_optimizer(optim, **kwargs)
    alone = jax.jit(lambda p, tx=alone_tx: run(tx, tx.init(p), p))(params)
    for a, b in zip(jax.tree.leaves(alone), jax.tree.leaves(together), strict=True):
      assert_allclose(np.asarray(b[i]), np.asarray(a), rtol=1e-6, atol=1e-7)
