"""A test series without labels runs end to end: scores, thresholds and alarms, no metrics."""

import numpy as np
import pandas as pd

from configs import tiny
from tsad_jax import experiment
from tsad_jax import summaries


def test_an_unlabeled_synthetic_series_gets_the_alarms_the_labeled_one_gets(tmp_path):
  labeled = experiment.train_and_evaluate(tiny.get_config(), tmp_path / "labeled")
  config = tiny.get_config()
  config.data.synthetic.labels = False
  unlabeled = experiment.train_and_evaluate(config, tmp_path / "unlabeled")
  summary = summaries.load_summary(unlabeled)
  assert "no metrics" in summary["labels"]
  assert not {"threshold_free", "thresholds", "baselines"} & summary.keys()
  with_labels = summaries.load_summary(labeled)
  for method, figures in summary["alarms"].items():
    assert figures["mean"]["flagged"] == with_labels["thresholds"][method]["mean"]["flagged"]
  scores = pd.read_csv(unlabeled / "scores.csv")
  assert "label" not in scores.columns
  np.testing.assert_array_equal(scores["alarm"], pd.read_csv(labeled / "scores.csv")["alarm"])
  assert "no metrics" in summaries.headline(summary)
  again, _ = experiment.evaluate_run(unlabeled)
  assert summaries.same_figures(again, summary) == []


def test_an_smd_layout_machine_without_a_label_file_runs(tmp_path):
  root = tmp_path / "ServerMachineDataset"
  rng = np.random.default_rng(0)
  for part, length in (("train", 700), ("test", 300)):
    (root / part).mkdir(parents=True)
    t = np.arange(length)[:, None]
    series = np.sin(t / 9 + np.arange(3)) + 0.05 * rng.standard_normal((length, 3))
    np.savetxt(root / part / "machine-9-9.txt", series, delimiter=",", fmt="%.5f")
  config = tiny.get_config("smd")
  config.data.root, config.data.entity = str(root), "machine-9-9"
  run_dir = experiment.train_and_evaluate(config, tmp_path / "runs")
  summary = summaries.load_summary(run_dir)
  assert summary["entities"] == ["machine-9-9"] and "labels" in summary
  assert 0 <= summary["alarms"]["pot"]["mean"]["flagged"] <= 1
  assert len(pd.read_csv(run_dir / "scores.csv")) == 300
