"""The causal alarm pipeline: held-out calibration, smoothing, and no look at the future."""

import numpy as np
import pytest

from configs import tiny
from tsad_jax import alarms
from tsad_jax import experiment
from tsad_jax import feature_scaling
from tsad_jax import reporting
from tsad_jax import run_setup
from tsad_jax import runs
from tsad_jax import smoothing
from tsad_jax import summaries
from tsad_jax import thresholds
from tsad_jax import train
from tsad_jax.data import synthetic
from tsad_jax.detector import Detector

CUT = 333  # test rows kept in the cut copy; more than a window


def _write_csv(path, series, labels):
  rows = ["time,a,b,c,d,label"] + [f"{t}," + ",".join(f"{v:.6f}" for v in row) + f",{y}"
                                   for t, (row, y) in enumerate(zip(series, labels, strict=True))]
  path.write_text("\n".join(rows) + "\n")


def _csv_config(root, test_file):
  config = tiny.get_config("csv")
  config.data.root, config.data.entity = str(root), "box"
  config.data.cache_dir = str(root / "cache")
  config.data.csv.train_file, config.data.csv.test_file = "train.csv", test_file
  config.data.csv.timestamp_column, config.data.csv.label_column = "time", "label"
  config.eval.smoothing, config.eval.smoothing_alpha = "ewma", 0.2
  config.eval.aggregation, config.eval.scaling_floor = "tail_p", 0.01
  config.threshold.methods = "dspot,spot,pot,percentile"
  return config


@pytest.fixture(scope="module", name="csv_run")
def _csv_run(tmp_path_factory):
  root = tmp_path_factory.mktemp("causal")
  entity = synthetic.generate(num_features=4, train_length=800, test_length=600).entity
  _write_csv(root / "train.csv", entity.train, np.zeros(len(entity.train), int))
  _write_csv(root / "test.csv", entity.test, entity.labels)
  _write_csv(root / "cut.csv", entity.test[:CUT], entity.labels[:CUT])
  run_dir = experiment.train_and_evaluate(_csv_config(root, "test.csv"), root / "runs")
  return root, run_dir


def test_scores_and_alarms_of_the_first_rows_do_not_change_when_the_series_is_cut(csv_run):
  """The launchers' default pipeline: the score and alarm at t read nothing after t."""
  root, run_dir = csv_run
  params = train.load_params(run_dir)
  cut_dir = root / "cut"
  reporting.score_and_report(run_setup.build(_csv_config(root, "cut.csv")), params, cut_dir)
  whole, cut = np.load(run_dir / "scores.npz"), np.load(cut_dir / "scores.npz")
  name = next(k for k in whole if k.endswith("/score")).split("/")[0]
  for key in ("score", "per_feature", "alarm"):
    np.testing.assert_array_equal(cut[f"{name}/{key}"], whole[f"{name}/{key}"][:CUT], key)
  summary = summaries.load_summary(run_dir)
  assert summary["scoring"]["mode"].startswith("causal (calibrated on the held-out")
  assert summary["scoring"]["alarm_method"] == "dspot"
  assert whole[f"{name}/alarm"].any()


def test_thresholds_are_fitted_on_the_held_out_tail_scored_in_eval_mode(csv_run):
  """The calibration scores are the last val_fraction of the training series' scores."""
  _, run_dir = csv_run
  config = runs.load_config(run_dir)
  setup = run_setup.build(config)
  score = reporting.raw_scorer(setup, train.load_params(run_dir))
  raw = score(setup.prepared.train, setup.prepared.train_lengths)
  assert np.array_equal(raw, score(setup.prepared.train, setup.prepared.train_lengths))
  tail = len(alarms.calibration_rows((len(raw),), config))
  assert tail == 200  # tiny: 800 training rows, data.val_fraction 0.25
  smoothed = smoothing.smooth("ewma", raw, alpha=0.2)
  assert config.eval.aggregation == "tail_p"  # per-feature -log tail probabilities, summed
  stats = feature_scaling.robust_stats(smoothed[-tail:], floor=config.eval.scaling_floor)
  scaled = feature_scaling.scale(smoothed[-tail:], stats)
  calib_totals = feature_scaling.tail_log_probabilities(scaled).sum(axis=1)
  summary = summaries.load_summary(run_dir)
  assert summary["scoring"]["calibration_points"] == [tail]
  expected = thresholds.pot(calib_totals, q=config.threshold.pot_q,
                            level=config.threshold.pot_level).threshold
  assert summary["thresholds"]["pot"]["mean"]["threshold"] == pytest.approx(expected, rel=1e-5)


def test_the_detector_is_causal_with_every_smoothing_and_the_tail_probability_pipeline(tmp_path):
  entity = synthetic.generate(num_features=3, train_length=800, test_length=500, seed=3).entity
  config = tiny.get_config()
  config.eval.smoothing, config.eval.smoothing_sigma = "gaussian", 3.0
  config.eval.aggregation = "tail_p"
  config.threshold.methods = "tail_p,dspot"
  detector = Detector(config, workdir=str(tmp_path)).fit(entity.train)
  whole_scores, cut_scores = (detector.decision_function(x)
                              for x in (entity.test, entity.test[:CUT]))
  np.testing.assert_array_equal(cut_scores, whole_scores[:CUT])
  np.testing.assert_array_equal(detector.predict(entity.test[:CUT]),
                                detector.predict(entity.test)[:CUT])
  assert detector.threshold_ == pytest.approx(thresholds.tail_p(config.threshold.tail_probability))


def test_transductive_scaling_does_look_ahead(csv_run):
  """The explicit test-scaled option is not causal: cutting the series changes its scores."""
  root, run_dir = csv_run
  params = train.load_params(run_dir)
  out = {}
  for test_file in ("test.csv", "cut.csv"):
    config = _csv_config(root, test_file)
    config.eval.feature_scaling = "test"
    reporting.score_and_report(run_setup.build(config), params, root / f"ts-{test_file}")
    out[test_file] = np.load(root / f"ts-{test_file}" / "scores.npz")
  name = next(k for k in out["cut.csv"] if k.endswith("/score"))
  assert not np.allclose(out["cut.csv"][name], out["test.csv"][name][:CUT])


def test_smoothing_by_hand_and_chunk_by_chunk():
  np.testing.assert_allclose(smoothing.smooth("ewma", np.array([1.0, 0.0, 0.0]), alpha=0.5),
                             [1.0, 0.5, 0.25])
  w1 = np.exp(-0.5)  # sigma 1: weights 1, e^-1/2, e^-2, e^-9/2
  np.testing.assert_allclose(smoothing.smooth("gaussian", np.array([1.0, 0.0, 0.0]), sigma=1.0),
                             [1.0, w1 / (1 + w1), np.exp(-2.0) / (1 + w1 + np.exp(-2.0))])
  assert len(smoothing.kernel(1.0)) == 4
  series = np.random.default_rng(0).normal(size=(40, 2))
  for method, options in (("ewma", {"alpha": 0.3}), ("gaussian", {"sigma": 2.5}),
                          ("none", {})):
    state, parts = smoothing.init((2,)), []
    for begin, end in ((0, 1), (1, 5), (5, 6), (6, 40)):
      chunk, state = smoothing.update(method, state, series[begin:end], **options)
      parts.append(chunk)
    np.testing.assert_array_equal(np.concatenate(parts),
                                  smoothing.smooth(method, series, **options), method)


@pytest.mark.parametrize("field,value,message", [
    ("eval.smoothing", "median", "config.eval.smoothing: unknown 'median'"),
    ("eval.smoothing_alpha", 0.0, r"smoothing_alpha=0.0: use a weight in \(0, 1\]"),
    ("eval.aggregation", "max", "config.eval.aggregation: unknown 'max'"),
    ("threshold.calibration", "test", "config.threshold.calibration: unknown 'test'"),
    ("threshold.methods", "tail_p", "set config.eval.aggregation=tail_p, or drop tail_p"),
])
def test_bad_alarm_settings_are_refused_before_training(field, value, message):
  config = tiny.get_config()
  if field == "eval.smoothing_alpha":
    config.eval.smoothing = "ewma"
  if field == "threshold.methods":  # tail_p thresholds a sum of tail log-probabilities only
    config.eval.aggregation = "sum"
  section, name = field.split(".")
  config[section][name] = value
  with pytest.raises(ValueError, match=message):
    run_setup.build(config)


def test_a_calibration_tail_too_short_for_the_threshold_is_a_clear_error():
  config = tiny.get_config()
  config.data.val_fraction, config.threshold.pot_level = 0.1, 0.98
  with pytest.raises(ValueError, match=r"synthetic: the threshold pot needs at least 501 "
                     r"calibration scores, but its held-out validation tail has 60\. Raise "
                     r"config.data.val_fraction"):
    run_setup.build(config)
  config.threshold.methods = "percentile"
  run_setup.build(config)
  config.data.val_fraction, config.threshold.calibration = 0.0, "val"
  with pytest.raises(ValueError, match="set config.data.val_fraction > 0"):
    run_setup.build(config)


def test_each_part_of_a_concatenated_series_is_scaled_by_its_own_tail():
  """Two channels whose scores differ a hundredfold: each test part is scaled by the median
  and IQR of its own training part's held-out tail, so both land on one scale."""
  config = tiny.get_config("synthetic")
  config.data.window, config.data.val_fraction = 10, 0.5
  config.eval.smoothing, config.eval.aggregation = "none", "sum"
  config.eval.feature_scaling, config.eval.scaling_floor = "train", 0.01
  rng = np.random.default_rng(0)
  quiet, loud = rng.normal(1.0, 0.1, (200, 2)), rng.normal(100.0, 10.0, (200, 2))
  train = np.concatenate([quiet, loud])
  test = np.concatenate([quiet[:50], loud[:70]])
  calibrated = alarms.calibrate(test, train, config, parts=(200, 200), test_parts=(50, 70))
  for piece, part, tail in ((calibrated.test[:50], quiet[:50], quiet[100:]),
                            (calibrated.test[50:], loud[:70], loud[100:])):
    stats = feature_scaling.robust_stats(tail, floor=0.01)
    np.testing.assert_allclose(piece, feature_scaling.scale(part, stats), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(
      calibrated.calibration[:100],
      feature_scaling.scale(quiet[100:], feature_scaling.robust_stats(quiet[100:], floor=0.01)),
      rtol=1e-5, atol=1e-6)
  pooled = alarms.calibrate(test, train, config, parts=(200, 200))  # no test parts: pooled
  assert pooled.test[:50].std() < 0.01 * calibrated.test[:50].std()  # the quiet part flattened
