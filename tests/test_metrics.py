"""Tests of tsad_jax.metrics against values worked out by hand."""

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from tsad_jax import metrics
from tsad_jax.metrics import affiliation
from tsad_jax.metrics import event
from tsad_jax.metrics import range_based
from tsad_jax.metrics import threshold_sweep

# Two segments, [1, 4] and [7, 8]; one predicted point in the first, one false alarm at 6.
LABELS = np.array([0, 1, 1, 1, 1, 0, 0, 1, 1, 0])
PREDS = np.array([0, 0, 1, 0, 0, 0, 1, 0, 0, 0])


def _segments_series(n=5000, n_segments=5, length=100, seed=0):
  rng = np.random.default_rng(seed)
  y = np.zeros(n, dtype=np.int8)
  for start in rng.choice(np.arange(50, n - length - 50, 3 * length), n_segments, replace=False):
    y[start:start + length] = 1
  return y


# --- segments ---


def test_anomaly_segments_inclusive_and_at_the_edges():
  assert metrics.anomaly_segments(LABELS) == [(1, 4), (7, 8)]
  assert metrics.anomaly_segments([1, 0, 1]) == [(0, 0), (2, 2)]
  assert metrics.anomaly_segments([True, True]) == [(0, 1)]
  assert metrics.anomaly_segments(np.zeros(4, dtype=np.uint8)) == []


# --- AUC-PR / AUC-ROC ---


def test_auc_pr_and_roc_by_hand():
  # Ranked by score: 0.8 (a), 0.4 (n), 0.35 (a), 0.1 (n).
  # Precision/recall at the four cuts: (1, 1/2), (1/2, 1/2), (2/3, 1), (1/2, 1);
  # AP = 1/2 * 1 + 0 * 1/2 + 1/2 * 2/3 = 5/6.
  # ROC: 3 of the 4 (anomaly, normal) pairs are ranked right -> 3/4.
  y, s = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
  assert metrics.auc_pr(y, s) == pytest.approx(5 / 6)
  assert metrics.auc_roc(y, s) == pytest.approx(3 / 4)


def test_auc_ties_count_as_one_threshold():
  assert metrics.auc_roc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
  assert metrics.auc_pr([1, 0], [0.5, 0.5]) == pytest.approx(0.5)


def test_auc_equal_sklearn_on_random_data_with_ties():
  rng = np.random.default_rng(1)
  for _ in range(20):
    y = (rng.random(300) < 0.1).astype(int)
    y[0] = 1
    s = np.round(rng.normal(size=300) + y, 1)
    assert metrics.auc_pr(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    assert metrics.auc_roc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


# --- point adjustment, PA%K, counts ---


def test_point_adjust_by_hand():
  np.testing.assert_array_equal(metrics.point_adjust(LABELS, PREDS),
                                [0, 1, 1, 1, 1, 0, 1, 0, 0, 0])


def test_pa_k_by_hand():
  # 1 of the 4 points of segment [1, 4] is predicted: 25 %.
  np.testing.assert_array_equal(metrics.pa_k(LABELS, PREDS, 20), [0, 1, 1, 1, 1, 0, 1, 0, 0, 0])
  np.testing.assert_array_equal(metrics.pa_k(LABELS, PREDS, 25), PREDS)  # not more than 25 %
  np.testing.assert_array_equal(metrics.pa_k(LABELS, PREDS, 0), metrics.point_adjust(LABELS, PREDS))
  np.testing.assert_array_equal(metrics.pa_k(LABELS, PREDS, 100), PREDS)


def test_confusion_counts_and_f1_by_hand():
  raw = metrics.confusion_counts(LABELS, PREDS)
  assert raw == {"tp": 1, "fp": 1, "fn": 5, "tn": 3}
  assert metrics.f1_from_counts(raw) == pytest.approx((1 / 2, 1 / 6, 1 / 4))
  pa = metrics.confusion_counts(LABELS, PREDS, adjust="pa")
  assert pa == {"tp": 4, "fp": 1, "fn": 2, "tn": 3}
  assert metrics.f1_from_counts(pa)[2] == pytest.approx(8 / 11)
  assert metrics.confusion_counts(LABELS, PREDS, adjust="pak", k=30) == raw


def test_counts_sum_over_entities():
  parts = [metrics.confusion_counts(LABELS, PREDS), metrics.confusion_counts([1, 0], [1, 1])]
  total = {key: sum(part[key] for part in parts) for key in parts[0]}
  assert total == {"tp": 2, "fp": 2, "fn": 5, "tn": 3}
  assert metrics.f1_from_counts(total)[2] == pytest.approx(2 * 2 / (2 * 2 + 2 + 5))


def test_f1_from_counts_zero_division_conventions():
  assert metrics.f1_from_counts({"tp": 0, "fp": 0, "fn": 3}) == (0.0, 0.0, 0.0)
  precision, recall, f1 = metrics.f1_from_counts({"tp": 0, "fp": 2, "fn": 0})
  assert precision == 0.0 and math.isnan(recall) and math.isnan(f1)


def test_at_threshold_by_hand():
  out = metrics.at_threshold(LABELS, PREDS)
  # PA%K: F1 = 8/11 for K = 0..24 (segment counted), 1/4 for K = 25..100; trapezoid over K/100.
  pa_k_auc = 0.24 * 8 / 11 + 0.01 * (8 / 11 + 1 / 4) / 2 + 0.75 * 1 / 4
  expected = {
      "precision": 1 / 2, "recall": 1 / 6, "F1": 1 / 4,
      "PA-precision": 4 / 5, "PA-recall": 4 / 6, "PA-F1": 8 / 11,
      "PA%K-AUC": pa_k_auc, "PA%K-F1@K=20": 8 / 11,
      "Event-based-F1": 1 / 2,  # event recall 1/2, point precision 1/2
      "R-based-F1": 2 / 7,  # see test_range_f1_by_hand
      "mean-detection-delay": 1.0,  # segment [1, 4] first hit at 2; [7, 8] missed
      "detected-segments": 1 / 2,
      "flagged": 2 / 10, "anomaly-share": 6 / 10,
      "alarm-events": 2, "false-alarm-events": 1,  # the alarm at 6 touches no anomaly
  }
  for key, value in expected.items():
    assert out[key] == pytest.approx(value), key
  assert list(out) == list(expected)[:10] + ["Affiliation-F"] + list(expected)[10:]


# --- best-F1 threshold ---


def _brute_force_f1(y, s):
  best = 0.0
  for t in np.r_[np.unique(s), s.min() - 1]:
    _, _, f1 = metrics.f1_from_counts(metrics.confusion_counts(y, (s > t).astype(int)))
    best = max(best, f1)
  return best


def test_best_f1_threshold_equals_brute_force():
  rng = np.random.default_rng(2)
  for trial in range(30):
    n = int(rng.integers(5, 200))
    y = (rng.random(n) < 0.2).astype(int)
    y[rng.integers(n)] = 1
    s = rng.normal(size=n) + y
    if trial % 2:
      s = np.round(s, 1)
    threshold, f1, precision, recall = metrics.best_f1_threshold(y, s)
    assert f1 == pytest.approx(_brute_force_f1(y, s), abs=1e-12)
    assert metrics.f1_from_counts(metrics.confusion_counts(y, (s > threshold).astype(int))) == (
        pytest.approx((precision, recall, f1)))


def test_best_f1_threshold_by_hand():
  # Cut below 0.7: predicts {0.9 (a), 0.8 (n), 0.7 (a)}: P = 2/3, R = 1, F1 = 0.8.
  threshold, f1, precision, recall = metrics.best_f1_threshold([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])
  assert (threshold, f1, precision, recall) == pytest.approx((0.1, 0.8, 2 / 3, 1.0))


# --- VUS ---


def test_vus_by_hand():
  """Labels [0, 1, 0, 0], scores [0.1, 0.8, 0.9, 0.5], buffers w = 0, 1, 2.

  Thresholds predict the top 1..4 points: {2}, {2, 1}, {2, 1, 3}, all (P = 1, T = 4).
  w = 0, 1 (no buffer): TPR = 0, 1, 1, 1; FPR = 1/3, 1/3, 2/3, 1; precision = 0, 1/2, 1/3, 1/4;
    ROC = 2/3 (trapezoid via (0, 0) ... (1, 1)), AP = 1 * 1/2.
  w = 2: points 0 and 2 get b = sqrt(1 - 1/2); region [0, 2] is hit from the first threshold on.
    k = 1: TP = b, P' = 1 + b/2, TPR = b / (1 + b/2) = t1; FP = 1 - b, N' = 3 - b/2,
      FPR = (1 - b) / (3 - b/2) = f1, precision = b.
    k = 2: TP = 1 + b -> TPR = 1 (capped), FPR = f1, precision = (1 + b) / 2; later TPR = 1.
    ROC = f1 * t1 / 2 + (1 - f1), AP = t1 * b + (1 - t1) * (1 + b) / 2.
  VUS = mean over w.
  """
  b = math.sqrt(0.5)
  t1, f1 = b / (1 + b / 2), (1 - b) / (3 - b / 2)
  vus_pr = (1 / 2 + 1 / 2 + t1 * b + (1 - t1) * (1 + b) / 2) / 3
  vus_roc = (2 / 3 + 2 / 3 + f1 * t1 / 2 + 1 - f1) / 3
  got = metrics.vus([0, 1, 0, 0], [0.1, 0.8, 0.9, 0.5], sliding_window=2)
  assert got == pytest.approx((vus_pr, vus_roc))
  assert got == pytest.approx((0.592349515629532, 0.750522567673327))


def test_vus_without_buffer_is_point_auc_for_one_segment():
  # sliding_window=0: no buffer, so P' = P and FPR is point-wise; with one segment the existence
  # factor is 1 as soon as recall > 0, so TPR = recall. With T <= 250 every rank is a threshold,
  # so the range AUCs are exactly the point-wise AUC-PR (average precision) and AUC-ROC.
  rng = np.random.default_rng(3)
  for trial in range(20):
    y = np.zeros(int(rng.integers(20, 250)), dtype=int)
    start = int(rng.integers(0, y.size - 5))
    y[start:start + int(rng.integers(1, 6))] = 1
    s = rng.normal(size=y.size) + y
    if trial % 2:
      s = np.round(s, 1)
    vus_pr, vus_roc = metrics.vus(y, s, sliding_window=0)
    assert vus_pr == pytest.approx(metrics.auc_pr(y, s), abs=1e-12)
    assert vus_roc == pytest.approx(metrics.auc_roc(y, s), abs=1e-12)


def test_vus_perfect_score_is_one():
  y = _segments_series()
  assert metrics.vus(y, y.astype(float), sliding_window=100) == pytest.approx((1.0, 1.0))
  out = metrics.threshold_free(y, y.astype(float))
  assert all(value == pytest.approx(1.0) for value in out.values())


def test_vus_buffer_rewards_near_misses():
  y = np.zeros(400, dtype=int)
  y[200:210] = 1
  near, far = np.zeros(400), np.zeros(400)
  near[212] = far[50] = 1.0
  assert metrics.vus(y, near, sliding_window=20)[0] > metrics.vus(y, far, sliding_window=20)[0]
  assert metrics.vus(y, near, sliding_window=0) == pytest.approx(
      metrics.vus(y, far, sliding_window=0))


# --- event, range, affiliation ---


def test_event_f1_by_hand():
  assert metrics.event_f1(LABELS, LABELS) == pytest.approx(1.0)
  assert metrics.event_f1(LABELS, np.zeros(10)) == 0.0
  assert metrics.event_f1(LABELS, PREDS) == pytest.approx(0.5)
  # Last segment ends the series (TSB-AD's event list drops it; it is counted here).
  assert metrics.event_f1([0, 0, 1], [0, 0, 1]) == pytest.approx(1.0)


def test_range_f1_by_hand():
  assert metrics.range_f1(LABELS, LABELS) == pytest.approx(1.0)
  assert metrics.range_f1(LABELS, np.zeros(10)) == 0.0
  # Recall: [1, 4] gets 0.2 * 1 + 0.8 * (1/4) * 1 = 0.4, [7, 8] gets 0 -> 0.2.
  # Precision: predicted range [2, 2] is fully anomalous -> 1, [6, 6] -> 0 -> 0.5.
  assert metrics.range_precision_recall(LABELS, PREDS) == pytest.approx((0.5, 0.2))
  assert metrics.range_f1(LABELS, PREDS) == pytest.approx(2 * 0.5 * 0.2 / 0.7)
  # Cardinality: two predicted ranges in one segment halve its overlap reward:
  # recall = 0.2 + 0.8 * (2/4) * (1/2) = 0.4, precision = 1 -> F = 0.8 / 1.4.
  assert metrics.range_f1([0, 1, 1, 1, 1, 0], [0, 1, 0, 1, 0, 0]) == pytest.approx(0.8 / 1.4)


def test_affiliation_by_hand():
  """Ground truth [4, 6) in a series [0, 10): zone E = [0, 10), m = 4. Prediction [8, 9).

  Precision: x in [8, 9) is at d = x - 6 in [2, 3]; P(d(X, J) >= d) = 1 - (|J| + 2d) / |E|
  = 1 - (2 + 2d) / 10, mean over d (mean 2.5) = 0.3.
  Recall: y in [4, 6) is at d = 8 - y <= min(y, 10 - y); P(|y - X| >= d) = 1 - 2d / 10,
  mean over y (mean d = 3) = 0.4. F = 2 * 0.3 * 0.4 / 0.7.
  """
  y = np.zeros(10, dtype=int)
  y[4:6] = 1
  p = np.zeros(10, dtype=int)
  p[8] = 1
  assert metrics.affiliation_precision_recall(y, p) == pytest.approx((0.3, 0.4))
  assert metrics.affiliation_f(y, p) == pytest.approx(0.24 / 0.7)


def test_affiliation_perfect_and_miss():
  assert metrics.affiliation_precision_recall(LABELS, LABELS) == pytest.approx((1.0, 1.0))
  assert metrics.affiliation_f(LABELS, LABELS) == pytest.approx(1.0)
  precision, recall = metrics.affiliation_precision_recall(LABELS, np.zeros(10))
  assert math.isnan(precision) and recall == 0.0
  assert metrics.affiliation_f(LABELS, np.zeros(10)) == 0.0


def test_vectorised_sweeps_equal_per_prediction_metrics():
  rng = np.random.default_rng(4)
  y = np.zeros(600, dtype=np.int8)
  for start in (0, 90, 300, 310, 590):
    y[start:start + int(rng.integers(1, 10))] = 1
  s = rng.normal(size=600) + 2 * y * rng.random(600)
  candidates = threshold_sweep.thresholds(s)
  preds = [(s > t).astype(int) for t in candidates]
  pa = max(metrics.f1_from_counts(metrics.confusion_counts(y, p, adjust="pa"))[2] for p in preds)
  assert threshold_sweep.best_pa_f1(y, s, candidates) == pytest.approx(pa)
  assert event.best_event_f1(y, s, candidates) == pytest.approx(
      max(metrics.event_f1(y, p) for p in preds))
  assert range_based.best_range_f1(y, s, candidates) == pytest.approx(
      max(metrics.range_f1(y, p) for p in preds))
  assert affiliation.best_affiliation_f(y, s, candidates) == pytest.approx(
      max(metrics.affiliation_f(y, p) for p in preds))


# --- detection delay ---


def test_detection_delay_by_hand():
  y = [0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1]
  p = [1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 1]
  # Segment [1, 3]: first hit 3 -> 2; [5, 6]: hit at 5 -> 0; [8, 11]: hit at 11 -> 3.
  np.testing.assert_array_equal(metrics.segment_delays(y, p), [2.0, 0.0, 3.0])
  assert metrics.detection_summary(y, p) == pytest.approx((5 / 3, 1.0))
  delays = metrics.segment_delays(LABELS, PREDS)
  assert delays[0] == 1.0 and math.isnan(delays[1])
  mean, found = metrics.detection_summary(LABELS, np.zeros(10))
  assert math.isnan(mean) and found == 0.0


# --- suites, undefined cases, bad inputs ---


def test_threshold_free_keys_and_components():
  y = _segments_series(n=2000, n_segments=3, length=40)
  s = np.random.default_rng(5).normal(size=y.size) + y
  out = metrics.threshold_free(y, s, sliding_window=50)
  assert tuple(out) == metrics.THRESHOLD_FREE_KEYS
  assert out["AUC-PR"] == metrics.auc_pr(y, s)
  assert (out["VUS-PR"], out["VUS-ROC"]) == metrics.vus(y, s, sliding_window=50)
  assert out["Standard-F1"] == metrics.best_f1_threshold(y, s)[1]
  assert all(0.0 <= value <= 1.0 for value in out.values())


def test_no_anomaly_gives_nan():
  y, s = np.zeros(50, dtype=int), np.random.default_rng(6).random(50)
  assert all(math.isnan(value) for value in metrics.threshold_free(y, s).values())
  out = metrics.at_threshold(y, (s > 0.5).astype(int))
  assert out["precision"] == 0.0 and out["PA-precision"] == 0.0
  label_free = {"flagged", "anomaly-share", "alarm-events", "false-alarm-events"}
  assert all(math.isnan(value) for key, value in out.items()
             if "precision" not in key and key not in label_free)
  assert out["anomaly-share"] == 0.0 and out["false-alarm-events"] == out["alarm-events"]
  threshold, f1, _, _ = metrics.best_f1_threshold(y, s)
  assert threshold == s.max() and math.isnan(f1)


def test_random_scores_get_high_pa_f1_but_low_vus_pr():
  y = _segments_series(n=5000, n_segments=5, length=100)
  s = np.random.default_rng(7).random(y.size)
  out = metrics.threshold_free(y, s)
  assert out["PA-F1"] > 0.8
  assert out["VUS-PR"] < 0.2
  assert out["AUC-ROC"] == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize("labels, scores, message", [
    ([0, 2, 1], [0.1, 0.2, 0.3], "labels must be binary"),
    ([0, np.nan, 1], [0.1, 0.2, 0.3], "labels must be binary"),
    ([0, 1, 1], [0.1, np.nan, 0.3], "scores must be finite"),
    ([0, 1, 1], [0.1, np.inf, 0.3], "scores must be finite"),
    ([0, 1, 1], [0.1, 0.2], "same length"),
    ([[0, 1]], [[0.1, 0.2]], "1-D"),
    ([], [], "empty"),
    (["a", "b"], [0.1, 0.2], "numeric"),
])
def test_bad_inputs_raise(labels, scores, message):
  for fn in (metrics.threshold_free, metrics.auc_pr, metrics.vus, metrics.best_f1_threshold):
    with pytest.raises(ValueError, match=message):
      fn(labels, scores)


def test_bad_predictions_and_options_raise():
  with pytest.raises(ValueError, match=r"preds must be binary \(0/1\), but preds\[1\] = 0.5"):
    metrics.at_threshold([0, 1], [0, 0.5])
  with pytest.raises(ValueError, match="same length"):
    metrics.point_adjust([0, 1, 1], [0, 1])
  with pytest.raises(ValueError, match="k must be a percentage"):
    metrics.pa_k([0, 1], [0, 1], 120)
  with pytest.raises(ValueError, match="k must be a percentage"):
    metrics.confusion_counts([0, 1], [0, 1], adjust="pak")
  with pytest.raises(ValueError, match="adjust must be one of"):
    metrics.confusion_counts([0, 1], [0, 1], adjust="PA")
  with pytest.raises(ValueError, match="sliding_window must be an integer >= 0"):
    metrics.vus([0, 1], [0.1, 0.2], sliding_window=-1)
