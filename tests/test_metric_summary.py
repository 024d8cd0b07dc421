"""Summaries over several entities: mean over entities and pooled counts; baselines."""

import ml_collections
import numpy as np
from numpy.testing import assert_allclose
import pytest
from sklearn import decomposition
from sklearn import preprocessing

from configs import tiny
from tsad_jax import baselines
from tsad_jax import metric_summary
from tsad_jax.data import synthetic


def _threshold_config(**fields):
  cfg = ml_collections.ConfigDict({"methods": "fixed", "calibration": "train", "pot_q": 1e-3,
                                   "pot_level": 0.98, "anomaly_ratio": 1.0, "fixed_value": 0.5})
  cfg.update(fields)
  return cfg


def test_mean_and_pooled_over_two_entities():
  # Entity a: 2 anomalies, fixed threshold 0.5 predicts one of them and one normal point.
  labels_a = np.array([0, 0, 1, 1, 0, 0])
  scores_a = np.array([0.1, 0.9, 0.8, 0.2, 0.1, 0.1])  # tp=1, fp=1, fn=1
  # Entity b: 1 anomaly, found, no false alarm.
  labels_b = np.array([0, 1, 0, 0])
  scores_b = np.array([0.0, 0.7, 0.0, 0.1])  # tp=1, fp=0, fn=0
  out = metric_summary.thresholded(["a", "b"], [labels_a, labels_b], [scores_a, scores_b],
                                   [scores_a, scores_b], _threshold_config())["fixed"]
  assert out["per_entity"]["a"]["F1"] == pytest.approx(0.5)
  assert out["per_entity"]["b"]["F1"] == pytest.approx(1.0)
  assert out["mean"]["F1"] == pytest.approx(0.75)
  # Pooled: tp=2, fp=1, fn=1 -> precision 2/3, recall 2/3.
  assert out["pooled"]["precision"] == pytest.approx(2 / 3)
  assert out["pooled"]["recall"] == pytest.approx(2 / 3)
  # Point adjustment fills entity a's segment: tp=3, fp=1, fn=0 in total.
  assert out["pooled"]["PA-precision"] == pytest.approx(3 / 4)
  assert out["pooled"]["PA-recall"] == pytest.approx(1.0)


def test_oracle_threshold_is_reported_separately_and_is_best():
  labels = np.array([0, 0, 1, 1, 0, 1, 0, 0])
  scores = np.array([0.1, 0.4, 0.8, 0.3, 0.2, 0.9, 0.35, 0.0])
  out = metric_summary.thresholded(["x"], [labels], [scores], [scores], _threshold_config())
  assert set(out) == {"fixed", metric_summary.ORACLE}
  assert out[metric_summary.ORACLE]["mean"]["F1"] >= out["fixed"]["mean"]["F1"]
  # Brute force over every cut.
  best = max(2 * np.sum((scores > t) & (labels == 1)) / (np.sum(scores > t) + labels.sum())
             for t in np.r_[scores, -1.0])
  assert out[metric_summary.ORACLE]["mean"]["F1"] == pytest.approx(best)


def test_single_entity_pooled_equals_mean_for_threshold_free():
  rng = np.random.default_rng(0)
  labels = (np.arange(300) % 50 > 44).astype(int)
  scores = rng.uniform(size=300) + labels
  out = metric_summary.threshold_free(["x"], [labels], [scores], sliding_window=5)
  assert out["mean"] == out["pooled"]
  assert out["mean"]["AUC-ROC"] > 0.9


def test_zscore_baseline_by_hand():
  train = np.array([[0.0, 10.0], [2.0, 10.0]])  # mean (1, 10), std (1, 0 -> 1)
  per_feature = baselines.zscore(train)(np.array([[4.0, 10.0], [1.0, 12.0]]))
  assert_allclose(per_feature, [[3.0, 0.0], [0.0, 2.0]])


def test_pca_baseline_flags_a_broken_correlation():
  rng = np.random.default_rng(0)
  base = rng.normal(size=(500, 1))
  train = np.hstack([base, 2 * base, -base]) + 0.01 * rng.normal(size=(500, 3))
  test = np.array([[1.0, 2.0, -1.0], [1.0, -2.0, -1.0]])  # the second breaks the correlation
  per_feature = baselines.pca(train, variance=0.9)(test)
  assert per_feature.shape == (2, 3)
  total = per_feature.sum(axis=1)
  assert total[1] > 100 * total[0]


def test_pca_baseline_is_plain_sklearn_pca():
  """Standardised features, 95 % variance, squared error summed: scikit-learn's own pipeline."""
  rng = np.random.default_rng(3)
  mixing = rng.normal(size=(4, 6))
  train = rng.normal(size=(800, 4)) @ mixing + 0.1 * rng.normal(size=(800, 6))
  train[:, 5] = 0.25  # a constant feature
  test = rng.normal(size=(300, 4)) @ mixing + rng.normal(size=(300, 6))
  scaler = preprocessing.StandardScaler().fit(train)
  reference = decomposition.PCA(n_components=0.95, svd_solver="full").fit(scaler.transform(train))
  z = scaler.transform(test)
  expected = np.square(z - reference.inverse_transform(reference.transform(z))).sum(axis=1)
  assert_allclose(baselines.pca(train)(test).sum(axis=1), expected, rtol=1e-6, atol=1e-9)


def test_baselines_in_a_summary_are_scored_like_the_model():
  """With no scaling or smoothing a baseline's total is its own plain score; the causal
  default fits it on the training series minus the held-out tail it calibrates on."""
  entity = synthetic.generate(train_length=2000, test_length=1000, num_features=4).entity
  config = tiny.get_config()
  config.eval.update(smoothing="none", feature_scaling="none", aggregation="sum")
  plain = baselines.calibrated("pca", entity, config)
  fit_part = entity.train[:len(entity.train) - len(plain.calibration)]
  assert len(plain.calibration) == 500  # tiny: data.val_fraction 0.25
  assert_allclose(plain.test, baselines.pca(fit_part)(entity.test), rtol=1e-5)
  config.threshold.calibration = "train"
  in_sample = baselines.calibrated("zscore", entity, config)
  assert_allclose(in_sample.calibration, baselines.zscore(entity.train)(entity.train), rtol=1e-5)
