"""The accuracy benchmark's report, from two tiny synthetic runs standing in for two machines."""

import csv
import json
import pathlib

from absl import flags
from absl.testing import flagsaver
import ml_collections
import numpy as np
import pytest

from bench import accuracy
from bench import report
from configs import tiny
from configs.sweeps import common as sweep_common
from tsad_jax import experiment
from tsad_jax import metric_summary
from tsad_jax import metrics
from tsad_jax import runs
from tsad_jax import summaries
from tsad_jax import sweep


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("bench")
  run_dirs = []
  for seed in (0, 1):
    config = tiny.get_config()
    config.data.entity = f"series-{seed}"
    config.data.synthetic.seed = seed
    config.eval.baselines = "zscore,pca"
    config.threshold.methods = "pot"
    run_dirs.append(experiment.train_and_evaluate(config, workdir))
  return run_dirs


def test_pooled_figures_use_every_run_and_its_own_alarms(two_runs):
  result = accuracy.job_result("tiny", "synthetic", two_runs)
  assert set(result.summaries) == {"series-0", "series-1"}
  labels, scores, alarms = [], [], []
  for run_dir, summary in zip(two_runs, result.summaries.values(), strict=True):
    arrays = np.load(run_dir / "scores.npz")
    name = summary["entities"][0]
    labels.append(arrays[f"{name}/label"])
    scores.append(arrays[f"{name}/score"])
    alarms.append(arrays[f"{name}/alarm"])
    threshold = summary["thresholds"]["pot"]["mean"]["threshold"]  # the alarm method
    np.testing.assert_array_equal(alarms[-1], scores[-1] > threshold)
  expected = metrics.threshold_free(np.concatenate(labels), np.concatenate(scores),
                                    sliding_window=10)
  assert result.pooled["VUS-PR"] == pytest.approx(expected["VUS-PR"])
  counts = metric_summary.pooled_counts(labels, alarms)
  assert result.pooled["alarm/F1"] == pytest.approx(counts["F1"])
  assert result.pooled["alarm/flagged"] == pytest.approx(
      np.concatenate(alarms).mean())


def test_report_rows_means_and_verdicts(two_runs):
  result = accuracy.job_result("tiny", "synthetic", two_runs)
  text = report.markdown({"tiny": result}, machine="test machine")
  assert "Machine: test machine." in text
  rows = [line for line in text.splitlines() if line.startswith("| LSTM-AE | series-")]
  assert len(rows) == 2
  vus = [s["threshold_free"]["mean"]["VUS-PR"] for s in result.summaries.values()]
  mean_row = next(line for line in text.splitlines() if line.startswith("| **LSTM-AE** |"))
  assert f"| {np.mean(vus):.3f} |" in mean_row
  verdict_row = next(line for line in text.splitlines()
                     if line.startswith("| synthetic | LSTM-AE | 2 |"))
  pca = np.mean([s["baselines"]["pca"]["threshold_free"]["mean"]["VUS-PR"]
                 for s in result.summaries.values()])
  zscore = np.mean([s["baselines"]["zscore"]["threshold_free"]["mean"]["VUS-PR"]
                    for s in result.summaries.values()])
  beats = np.mean(vus) > max(pca, zscore)
  assert verdict_row.endswith("| yes |" if beats else "| **no** |")
  alarms = text.split("## Alarms without labels")[1].split("\n## ")[0]
  alarm_row = next(line for line in alarms.splitlines() if line.startswith("| synthetic | LSTM-AE"))
  label_free = np.mean([s["thresholds"]["pot"]["mean"]["F1"] for s in result.summaries.values()])
  oracle = np.mean([s["thresholds"][metric_summary.ORACLE]["mean"]["F1"]
                    for s in result.summaries.values()])
  assert alarm_row.startswith(f"| synthetic | LSTM-AE | {label_free:.3f} | {oracle:.3f} | "
                              f"{label_free / oracle:.3f} |")
  assert "| synthetic | baseline: pca |" in alarms and "| synthetic | baseline: zscore |" in alarms


def test_a_job_without_finished_runs_is_left_out(tmp_path):
  assert accuracy.job_result("tiny", "synthetic", [tmp_path / "not-a-run"]) is None


def test_kept_results_give_the_same_report(two_runs, tmp_path):
  result = accuracy.job_result("tiny", "synthetic", two_runs)
  path = report.save(result, tmp_path)
  assert path == tmp_path / "tiny.json"
  kept = report.load_all(tmp_path)
  assert list(kept) == ["tiny"]
  assert report.machines(kept) == result.summaries["series-0"]["machine"]
  assert (report.markdown(kept, machine="m") == report.markdown({"tiny": result}, machine="m"))
  assert report.load_all(tmp_path / "missing") == {}
  assert "Training steps skipped for non-finite gradients: LSTM-AE 0 in 2 runs." in (
      report.markdown(kept, machine="m"))


def _tiny_job(wanted: dict):
  """A stand-in for accuracy.job_config: the tiny config with `wanted`'s current values."""

  def job_config(job, entity):
    del job, entity
    config = tiny.get_config()
    config.eval.baselines, config.eval.plots = "", False
    for field, value in wanted.items():
      section, name = field.split(".")
      config[section][name] = value
    return accuracy.with_run_id(config)

  return job_config


def test_a_scoring_change_rescores_the_finished_run_instead_of_retraining(tmp_path, monkeypatch):
  wanted = {"eval.smoothing": "ewma", "model.hidden_size": 8}  # not the default
  monkeypatch.setattr(accuracy, "job_config", _tiny_job(wanted))
  flags.FLAGS.mark_as_parsed()
  with flagsaver.flagsaver(workdir=str(tmp_path), report_only=False):
    run_dir = accuracy.run_job("tiny", "synthetic")
    assert (run_dir / "summary.json").is_file() and run_dir.name.startswith("bench-")
    wanted["eval.smoothing"] = "gaussian"
    rescored = accuracy.run_job("tiny", "synthetic")
    assert rescored == run_dir / "evaluations" / "best+eval.smoothing=gaussian"
    assert list(run_dir.parent.iterdir()) == [run_dir]  # nothing retrained
    summary = summaries.load_summary(rescored)
    assert summary["training"] == summaries.load_summary(run_dir)["training"]
    assert runs.load_config(run_dir).eval.smoothing == "ewma"
    assert runs.load_config(rescored).eval.smoothing == "gaussian"
    assert accuracy.job_result("tiny", "synthetic", [rescored]).summaries["synthetic"] == summary
    wanted["model.hidden_size"] = 12
    retrained = accuracy.run_job("tiny", "synthetic")
    assert retrained.parent == run_dir.parent and retrained != run_dir


def test_a_run_saved_before_a_field_existed_is_found_unless_the_job_changes_it(tmp_path,
                                                                              monkeypatch):
  wanted = {"train.compute_dtype": "float32"}  # the library default
  tiny_job = _tiny_job(wanted)
  monkeypatch.setattr(accuracy, "job_config", tiny_job)
  flags.FLAGS.mark_as_parsed()
  with flagsaver.flagsaver(workdir=str(tmp_path), report_only=False):
    run_dir = accuracy.run_job("tiny", "synthetic")
    saved = runs.load_config(run_dir).to_dict()
    del saved["train"]["compute_dtype"]  # as saved before the field was added
    (run_dir / runs.CONFIG_FILE).write_text(json.dumps(saved))
    old = run_dir.rename(run_dir.parent / "bench-older")
    assert accuracy.run_job("tiny", "synthetic") == old
    assert list(old.parent.iterdir()) == [old]  # nothing retrained
    wanted["train.compute_dtype"] = "bfloat16"  # not what the old run was trained with
    assert accuracy.finished_run(tiny_job("tiny", "synthetic")) != old


def _tiny_sweep() -> ml_collections.ConfigDict:
  """Two learning rates of the tiny config, each trained fully, ranked by validation loss."""
  spec = sweep_common.get_config()
  spec.name, spec.base, spec.quick_epochs, spec.top_k = "tiny-swept", "tiny", 0, 2
  spec.grid = ml_collections.ConfigDict({"optim": {"learning_rate": (1e-3, 1e-2)}})
  spec.overrides = ml_collections.ConfigDict({"eval.baselines": ""}, allow_dotted_keys=True)
  return spec


def test_a_sweep_job_stands_for_its_best_run_and_is_rescored_like_one(tmp_path, monkeypatch):
  spec = _tiny_sweep()
  monkeypatch.setitem(accuracy.JOBS, "tiny_swept", "synthetic")
  monkeypatch.setitem(accuracy.SWEEPS, "tiny_swept", "unused")
  monkeypatch.setattr(accuracy, "sweep_spec", lambda job, entity: spec)
  flags.FLAGS.mark_as_parsed()
  folder = sweep.sweep_folder(tmp_path, spec.name)
  with flagsaver.flagsaver(workdir=str(tmp_path), report_only=True):
    assert accuracy.run_job("tiny_swept", "synthetic") == folder  # nothing run yet
    assert not folder.exists()
  with flagsaver.flagsaver(workdir=str(tmp_path), report_only=False):
    run_dir = accuracy.run_job("tiny_swept", "synthetic")
    best = json.loads((folder / "best.json").read_text())
    assert run_dir == pathlib.Path(best["run_dir"]) and (run_dir / "summary.json").is_file()
    losses = [row["value"] for row in csv.DictReader((folder / "results.csv").open())]
    assert len(losses) == 2 and best["value"] == min(float(v) for v in losses)
    spec.overrides["eval.smoothing"] = "ewma"  # a scoring-only change
    rescored = accuracy.run_job("tiny_swept", "synthetic")
    assert rescored == run_dir / "evaluations" / "best+eval.smoothing=ewma"
    assert runs.load_config(rescored).eval.smoothing == "ewma"
    assert len(list(run_dir.parent.iterdir())) == 2  # the two trials, nothing retrained
