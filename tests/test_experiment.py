"""End to end: train, score, threshold, report, re-evaluate; on synthetic and real SMD."""

import json
import subprocess
import sys

import numpy as np
import pytest

from configs import common
from configs import smd_lstmae
from configs import tiny
from tsad_jax import experiment
from tsad_jax import reporting
from tsad_jax import run_setup
from tsad_jax import runs
from tsad_jax import summaries
from tsad_jax import train as train_lib
from tsad_jax.detector import Detector


def _tiny(**data):
  config = tiny.get_config()
  config.eval.plots = True
  config.eval.baselines = "zscore,pca"
  for key, value in data.items():
    config.data[key] = value
  return config


def test_run_writes_every_artifact_and_evaluate_reproduces_it(tmp_path):
  run_dir = experiment.train_and_evaluate(_tiny(), tmp_path)
  assert run_dir.parent == tmp_path / "synthetic" / "synthetic" / "lstm_ae"
  for name in ("config.json", "metrics.json", "scores.npz", "scores.csv", "summary.json",
               "plots/loss.png", "plots/score_synthetic.png", "plots/features_synthetic.png"):
    assert (run_dir / name).is_file(), name
  summary = summaries.load_summary(run_dir)
  assert list(summary["threshold_free"]["mean"])[:3] == ["AUC-PR", "AUC-ROC", "VUS-PR"]
  assert set(summary["baselines"]) == {"zscore", "pca"}
  assert {"pot", "spot", "percentile", "best_f1_oracle"} <= set(summary["thresholds"])
  assert summary["training"]["epochs"] == 2
  scores = np.load(run_dir / "scores.npz")
  assert scores["synthetic/score"].shape == (600,)
  assert scores["synthetic/per_feature"].shape == (600, 4)

  again, out_dir = experiment.evaluate_run(run_dir)
  assert out_dir == run_dir / "evaluations" / "best"
  assert summaries.same_figures(again, summary) == []

  # Re-scoring with another threshold setting moves the thresholds, not the scores.
  other, other_dir = experiment.evaluate_run(
      run_dir, overrides=("threshold.pot_q=1e-3", "eval.plots=False"))
  assert other_dir == run_dir / "evaluations" / "best+eval.plots=False+threshold.pot_q=1e-3"
  assert other["threshold_free"] == summary["threshold_free"]
  assert other["thresholds"]["pot"]["mean"]["threshold"] != (
      summary["thresholds"]["pot"]["mean"]["threshold"])
  assert (run_dir / "summary.json").read_text() == json.dumps(summary, indent=2) + "\n"


@pytest.mark.parametrize("override,message", [
    ("model.hidden_size=16", "changes the trained model"),
    ("threshold.no_such=1", "has no field 'threshold.no_such'"),
    ("eval.plots=maybe", "use True or False"),
    ("threshold.pot_q=often", "is not a float"),
    ("threshold.pot_q", "write field=value"),
])
def test_rescoring_refuses_what_it_cannot_change(override, message):
  with pytest.raises(ValueError, match=message):
    runs.rescoring_config(tiny.get_config(), [override])


def test_a_new_run_never_reuses_a_folder_and_run_id_resumes(tmp_path):
  first = experiment.train_and_evaluate(_tiny(), tmp_path)
  second = experiment.train_and_evaluate(_tiny(), tmp_path)
  assert first != second and first.parent == second.parent
  before = (first / "summary.json").read_text()
  config = _tiny()
  config.run_id = first.name
  config.train.max_epochs = 3  # resume and train one more epoch
  resumed = experiment.train_and_evaluate(config, tmp_path)
  assert resumed == first
  assert len(json.loads((first / "metrics.json").read_text())) == 3
  assert (first / "summary.json").read_text() != before
  changed = _tiny()
  changed.run_id = first.name
  changed.model.hidden_size = 16
  with pytest.raises(ValueError, match="model.hidden_size"):
    experiment.train_and_evaluate(changed, tmp_path)


def test_launchers_train_then_evaluate(tmp_path):
  train = subprocess.run(
      [sys.executable, "-m", "launch.train", "--config=configs/tiny.py",
       f"--workdir={tmp_path}", "--config.train.max_epochs=1"],
      capture_output=True, text=True, check=True)
  assert "VUS-PR" in train.stdout
  (run_dir,) = (tmp_path / "synthetic" / "synthetic" / "lstm_ae").iterdir()
  assert runs.load_config(run_dir).train.max_epochs == 1
  evaluate = subprocess.run([sys.executable, "-m", "launch.evaluate", f"--run={run_dir}"],
                            capture_output=True, text=True, check=True)
  assert "Reproduces the run's summary.json" in evaluate.stdout
  # --step=N scores the parameters saved at step N, into evaluations/step-N/.
  step = min(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())
  subprocess.run([sys.executable, "-m", "launch.evaluate", f"--run={run_dir}", f"--step={step}"],
                 capture_output=True, text=True, check=True)
  at_step = np.load(run_dir / "evaluations" / f"step-{step}" / "scores.npz")["synthetic/score"]
  config = runs.load_config(run_dir)
  reporting.score_and_report(run_setup.build(config),
                              train_lib.load_params(run_dir, step=step), tmp_path / "expected")
  expected = np.load(tmp_path / "expected" / "scores.npz")["synthetic/score"]
  np.testing.assert_array_equal(at_step, expected)
  best = np.load(run_dir / "scores.npz")["synthetic/score"]
  assert not np.array_equal(at_step, best)  # the first checkpoint: before the best parameters
  # A run saved before eval.residual_plots and train.compute_dtype existed still evaluates.
  saved = json.loads((run_dir / "config.json").read_text())
  del saved["eval"]["residual_plots"], saved["train"]["compute_dtype"]
  (run_dir / "config.json").write_text(json.dumps(saved))
  evaluate = subprocess.run([sys.executable, "-m", "launch.evaluate", f"--run={run_dir}"],
                            capture_output=True, text=True, check=True)
  assert "Reproduces the run's summary.json" in evaluate.stdout


def test_missing_fields_take_defaults_and_saved_values_stay():
  saved = tiny.get_config()
  del saved.eval["residual_plots"]
  saved.eval.batch_size, saved.model.hidden_size = 7, 5
  defaults = tiny.get_config()
  defaults.model.new_model_field = 1
  merged = runs.add_missing_fields(saved, defaults)
  assert merged.eval.residual_plots == defaults.eval.residual_plots
  assert merged.eval.batch_size == 7 and merged.model.hidden_size == 5
  assert "new_model_field" not in merged.model and "residual_plots" not in saved.eval


def test_a_run_saved_before_dspot_relearn_keeps_alarming_as_it_did():
  """threshold.dspot_relearn came with a default of 0 (Siffer et al.'s DSPOT) that later
  became 30: a run saved without the field is re-scored and deployed with 0."""
  saved = common.get_config()
  del saved.threshold["dspot_relearn"]
  assert common.get_config().threshold.dspot_relearn != 0
  assert runs.add_missing_fields(saved, common.get_config()).threshold.dspot_relearn == 0
  newer = common.get_config()
  newer.threshold.dspot_relearn = 7
  assert runs.add_missing_fields(newer, common.get_config()).threshold.dspot_relearn == 7


def test_missing_scoring_fields_of_the_runs_own_model_take_its_defaults():
  saved = common.defaults("mscred")
  del saved.model["score_scales"], saved.model["filters"]
  merged = runs.add_missing_fields(saved, common.defaults("mscred"))
  assert merged.model.score_scales == ""  # scoring only: filled
  assert "filters" not in merged.model  # training field: the model file's business
  other_model = runs.add_missing_fields(saved, common.defaults("lstm_ae"))
  assert "score_scales" not in other_model.model
  assert common.defaults("no_such_model").model.name == common.get_config().model.name


def test_bad_config_value_is_a_clear_error(tmp_path):
  config = _tiny()
  config.model.name = "no_such_model"
  with pytest.raises(ValueError, match="available: .*lstm_ae"):
    experiment.train_and_evaluate(config, tmp_path)
  config = _tiny()
  config.optim.schedule = "sometimes"
  with pytest.raises(ValueError, match="optim.schedule"):
    experiment.train_and_evaluate(config, tmp_path)
  config = _tiny()
  config.threshold.methods = "pot,magic"
  with pytest.raises(ValueError, match="threshold.methods: unknown 'magic'; choose from pot"):
    run_setup.build(config)
  config = _tiny()
  config.eval.point_rule = "first"
  with pytest.raises(ValueError, match="eval.point_rule"):
    run_setup.build(config)
  config = _tiny()
  config.eval.residual_plots = -1
  with pytest.raises(ValueError, match="eval.residual_plots=-1 must be an integer >= 0"):
    run_setup.build(config)


def test_detector_fit_decision_function_predict(tmp_path):
  config = tiny.get_config()
  rng = np.random.default_rng(0)
  t = np.arange(800)[:, None]
  train = np.sin(t / 5.0 + np.arange(3)) + 0.05 * rng.normal(size=(800, 3))
  test = np.sin(t[:300] / 5.0 + np.arange(3)) + 0.05 * rng.normal(size=(300, 3))
  test[200:210] += 3.0
  detector = Detector(config, workdir=str(tmp_path)).fit(train)
  assert detector.decision_scores_.shape == (800,)
  scores = detector.decision_function(test)
  assert scores.shape == (300,)
  assert scores[200:210].mean() > 5 * np.median(scores)
  labels = detector.predict(test)
  assert set(np.unique(labels)) <= {0, 1} and labels[200:210].any()
  assert np.isfinite(detector.threshold_)
  with pytest.raises(ValueError, match="features"):
    detector.decision_function(test[:, :2])
  with pytest.raises(ValueError, match="NaN"):
    detector.decision_function(np.where(t[:300] == 5, np.nan, test))


def test_short_real_smd_training_on_two_machines(tmp_path, data_root):
  config = smd_lstmae.get_config("machine-1-6,machine-2-1")
  config.data.root = str(data_root / "ServerMachineDataset")
  config.data.train_stride = 100
  config.train.max_epochs = 1
  config.train.progress_bar = False
  config.model.hidden_size = 16
  config.eval.plots = False
  run_dir = experiment.train_and_evaluate(config, tmp_path)
  assert run_dir.parent == tmp_path / "smd" / "machine-1-6+machine-2-1" / "lstm_ae"
  summary = summaries.load_summary(run_dir)
  assert summary["entities"] == ["machine-1-6", "machine-2-1"]
  free = summary["threshold_free"]
  per_entity = [free["per_entity"][m]["VUS-PR"] for m in summary["entities"]]
  assert free["mean"]["VUS-PR"] == pytest.approx(np.mean(per_entity))
  assert 0.0 < free["pooled"]["VUS-PR"] <= 1.0
  pot = summary["thresholds"]["pot"]
  assert set(pot["per_entity"]) == {"machine-1-6", "machine-2-1"}
  scores = np.load(run_dir / "scores.npz")
  assert scores["machine-1-6/score"].shape == (23689,)
  assert scores["machine-2-1/label"].sum() > 0
  explained = summary["interpretation"]  # SMD's interpretation_label dims
  assert set(explained["per_entity"]) == {"machine-1-6", "machine-2-1"}
  assert explained["pooled"]["timesteps"] == sum(
      f["timesteps"] for f in explained["per_entity"].values())
  for key in ("HitRate@100%", "HitRate@150%", "NDCG@100%", "NDCG@150%"):
    assert 0.0 <= explained["pooled"][key] <= 1.0
    assert explained["mean"][key] == pytest.approx(
        np.mean([explained["per_entity"][m][key] for m in summary["entities"]]))
  assert "HitRate@150%" in summaries.headline(summary)


def test_rescoring_overrides_name_the_changed_scoring_fields_only():
  saved, wanted = tiny.get_config(), tiny.get_config()
  wanted.eval.feature_scaling, wanted.threshold.pot_q, wanted.run_id = "test", 1e-3, "other"
  overrides = runs.rescoring_overrides(saved, wanted)
  assert overrides == ["eval.feature_scaling=test", "threshold.pot_q=0.001"]
  rescored = runs.rescoring_config(saved, overrides)
  assert (rescored.eval.feature_scaling, rescored.threshold.pot_q) == ("test", 1e-3)
  assert runs.training_fields(saved) == runs.training_fields(wanted)
  wanted.model.hidden_size += 1
  assert runs.training_fields(saved) != runs.training_fields(wanted)
