"""Per-feature score scaling: robust statistics, the floor, and its use in runs and the Detector."""

import numpy as np
import pytest

from configs import tiny
from tsad_jax import experiment
from tsad_jax import feature_scaling
from tsad_jax.detector import Detector


def _scores(rng, length=2000):
  """Feature 0: large, steady error; feature 1: small error with a short burst at 1500."""
  scores = np.stack([50.0 + 20.0 * rng.random(length), 0.1 * rng.random(length)], axis=1)
  scores[1500:1505, 1] += 2.0
  return scores


def test_training_statistics_centre_and_scale_each_feature():
  rng = np.random.default_rng(0)
  train = rng.normal(size=(4000, 3)) * [1.0, 10.0, 100.0] + [0.0, 5.0, -7.0]
  scaled, _ = feature_scaling.apply("train", train, train)
  low, median, high = np.percentile(scaled, [25, 50, 75], axis=0)
  np.testing.assert_allclose(median, 0.0, atol=1e-6)
  np.testing.assert_allclose(high - low, 1.0, rtol=1e-5)


def test_a_steady_large_error_no_longer_hides_a_burst_in_another_feature():
  rng = np.random.default_rng(1)
  test, train = _scores(rng), _scores(rng)
  train[1500:1505, 1] -= 2.0  # training has no burst
  def above_burst(total):
    return np.count_nonzero(total > total[1500:1505].min())

  assert above_burst(test.sum(axis=1)) > 100
  for mode in ("train", "test"):
    scaled, _ = feature_scaling.apply(mode, test, train)
    assert above_burst(scaled.sum(axis=1)) == 4, mode  # the burst's own other points


def test_a_constant_feature_is_floored_not_divided_by_zero():
  rng = np.random.default_rng(2)
  train = np.stack([rng.normal(size=1000), np.full(1000, 3.0)], axis=1)
  median, spread = feature_scaling.robust_stats(train)
  assert spread[1] == pytest.approx(0.01 * spread[0] / 2, rel=1e-2)  # the default floor
  assert feature_scaling.robust_stats(train, floor=0.5)[1][1] == pytest.approx(spread[0] / 4)
  test = train.copy()
  test[10, 1] = 4.0
  scaled, _ = feature_scaling.apply("train", test, train)
  assert np.isfinite(scaled).all() and np.argmax(scaled[:, 1]) == 10
  all_constant = np.ones((50, 2))
  assert np.isfinite(feature_scaling.apply("train", all_constant, all_constant)[0]).all()


def test_none_returns_the_scores_and_unknown_modes_are_refused():
  scores = np.arange(6.0).reshape(3, 2)
  test, train = feature_scaling.apply("none", scores, scores + 1)
  assert test is scores and np.array_equal(train, scores + 1)
  with pytest.raises(ValueError, match="feature_scaling: unknown 'zscore'; choose from none"):
    feature_scaling.apply("zscore", scores, scores)
  with pytest.raises(ValueError, match="scaling_floor=0"):
    feature_scaling.apply("test", scores, scores, floor=0)
  config = tiny.get_config()
  config.eval.feature_scaling = "zscore"
  with pytest.raises(ValueError, match="eval.feature_scaling"):
    experiment.build(config)


def test_rescoring_a_run_with_train_scaling(tmp_path):
  config = tiny.get_config()
  config.eval.baselines = ""
  run_dir = experiment.train_and_evaluate(config, tmp_path)
  default = np.load(run_dir / "scores.npz")["synthetic/per_feature"]  # test statistics
  summary, out_dir = experiment.evaluate_run(
      run_dir, overrides=("eval.feature_scaling=train", "eval.plots=False"))
  scaled = np.load(out_dir / "scores.npz")["synthetic/per_feature"]
  assert scaled.shape == default.shape and not np.allclose(scaled, default)
  # Scaling is increasing and affine per feature: each feature's peak stays where it was.
  np.testing.assert_array_equal(scaled.argmax(axis=0), default.argmax(axis=0))
  assert np.isfinite(summary["threshold_free"]["mean"]["VUS-PR"])


def test_detector_scales_with_its_training_statistics(tmp_path):
  config = tiny.get_config()
  config.eval.feature_scaling = "train"
  rng = np.random.default_rng(0)
  t = np.arange(800)[:, None]
  train = np.sin(t / 5.0 + np.arange(3)) + 0.05 * rng.normal(size=(800, 3))
  detector = Detector(config, workdir=str(tmp_path)).fit(train)
  per_feature, _ = feature_scaling.apply("train", detector.train_per_feature_,
                                         detector.train_per_feature_)
  np.testing.assert_allclose(np.median(per_feature, axis=0), 0.0, atol=1e-5)
  np.testing.assert_allclose(detector.decision_scores_, per_feature.sum(axis=1), rtol=1e-5)
  np.testing.assert_allclose(detector.decision_function(train), detector.decision_scores_,
                             rtol=1e-4, atol=1e-4)
