"""Per-feature score scaling: robust statistics, the floor, and its use in runs and the Detector."""

import numpy as np
import pytest

from configs import tiny
from tsad_jax import experiment
from tsad_jax import feature_scaling
from tsad_jax import run_setup
from tsad_jax import summaries
from tsad_jax import thresholds
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
    for aggregation in ("sum", "tail_p"):
      scaled, _ = feature_scaling.apply(mode, test, train, aggregation=aggregation)
      assert above_burst(scaled.sum(axis=1)) == 4, (mode, aggregation)  # the burst's own points


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
    run_setup.build(config)


def test_rescoring_a_run_with_test_scaling(tmp_path):
  config = tiny.get_config()
  config.eval.baselines = ""
  run_dir = experiment.train_and_evaluate(config, tmp_path)
  default = np.load(run_dir / "scores.npz")["synthetic/per_feature"]  # calibration statistics
  summary, out_dir = experiment.evaluate_run(
      run_dir, overrides=("eval.feature_scaling=test", "eval.plots=False"))
  scaled = np.load(out_dir / "scores.npz")["synthetic/per_feature"]
  assert scaled.shape == default.shape and not np.allclose(scaled, default)
  # Scaling is increasing and affine per feature: each feature's peak stays where it was.
  np.testing.assert_array_equal(scaled.argmax(axis=0), default.argmax(axis=0))
  assert np.isfinite(summary["threshold_free"]["mean"]["VUS-PR"])
  assert summary["scoring"]["mode"].startswith("test-scaled (transductive")
  causal = summaries.load_summary(run_dir)
  assert causal["scoring"]["mode"].startswith("causal")
  # The causal run reports the transductive figures beside its own, equal to the re-scoring's.
  assert causal["threshold_free_test_scaled"]["mean"]["VUS-PR"] == pytest.approx(
      summary["threshold_free"]["mean"]["VUS-PR"], rel=1e-5)


def test_tail_probabilities_by_hand():
  """At the median the tail probability is 1/2; one IQR above it z = 1.349, P = 0.0887."""
  scaled = np.array([[0.0, 1.0, -3.0]])
  np.testing.assert_allclose(feature_scaling.tail_log_probabilities(scaled),
                             [[np.log(2.0), -np.log(0.08867), 0.0]], atol=1e-4)
  train = np.random.default_rng(3).normal(size=(4000, 2))
  test = np.array([[0.0, 0.0], [0.0, 4.0]])
  summed, _ = feature_scaling.apply("train", test, train, aggregation="tail_p")
  assert summed[1, 1] > 8.0 > summed[0, 1]  # four standard deviations: -log(3.2e-5) = 10.3
  with pytest.raises(ValueError, match="aggregation='tail_p' fits each feature's distribution"):
    feature_scaling.apply("none", test, train, aggregation="tail_p")


def test_detector_calibrates_on_its_held_out_tail_like_the_launchers(tmp_path):
  """Scaling statistics and the threshold come from the last val_fraction of the series it
  was fitted on (never trained on), as in launch.train; not from the whole training series."""
  config = tiny.get_config()
  config.eval.smoothing = "none"  # smoothing has its own tests; here the tail's statistics
  rng = np.random.default_rng(0)
  t = np.arange(800)[:, None]
  train = np.sin(t / 5.0 + np.arange(3)) + 0.05 * rng.normal(size=(800, 3))
  detector = Detector(config, workdir=str(tmp_path)).fit(train)
  raw = detector.train_per_feature_
  assert len(detector.calibration_scores_) == 200  # tiny: data.val_fraction 0.25

  def total(stats):  # the default aggregation: the scaled scores summed
    assert config.eval.aggregation == "sum"
    return feature_scaling.scale(raw, stats).sum(axis=1)

  floor = config.eval.scaling_floor
  tail_stats = feature_scaling.robust_stats(raw[-200:], floor=floor)
  np.testing.assert_allclose(detector.calibration_scores_, total(tail_stats)[-200:], rtol=1e-5)
  np.testing.assert_allclose(detector.decision_scores_, total(tail_stats), rtol=1e-5)
  whole = feature_scaling.robust_stats(raw, floor=floor)
  assert not np.allclose(detector.decision_scores_, total(whole))
  assert detector.threshold_ == thresholds.pot(detector.calibration_scores_,
                                               q=config.threshold.pot_q,
                                               level=config.threshold.pot_level).threshold
  np.testing.assert_allclose(detector.decision_function(train), detector.decision_scores_,
                             rtol=1e-4, atol=1e-4)
  np.testing.assert_array_equal(detector.predict(train), detector.labels_)
