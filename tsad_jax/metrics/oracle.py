"""The best point-wise F1 over every threshold (the label-aware oracle; TSB-AD's Standard-F1).

TSB-AD's Standard-F1 is max over `sklearn.metrics.precision_recall_curve` of
2PR / (P + R + 1e-5), i.e. the best F1 over every distinct score threshold.
Here the same search is exact (no 1e-5 in the denominator, which lowers
TSB-AD's value by about 1e-5) and takes one sort and cumulative sums.
"""

import numpy as np
from numpy.typing import ArrayLike

from tsad_jax.metrics import inputs
from tsad_jax.metrics import point
from tsad_jax.metrics import ranking


def _search(y: np.ndarray, s: np.ndarray) -> tuple[float, float, float, float]:
  values, tp, fp = ranking.counts_by_threshold(y, s)
  positives = int(tp[-1])
  if positives == 0:
    return float(values[0]), float("nan"), 0.0, float("nan")
  f1 = point.f1_vector(tp, fp, positives)
  best = int(np.argmax(f1))
  below = values[best + 1] if best + 1 < values.size else np.nextafter(values[best], -np.inf)
  precision = tp[best] / (tp[best] + fp[best])
  return float(below), float(f1[best]), float(precision), float(tp[best] / positives)


def best_f1_threshold(labels: ArrayLike, scores: ArrayLike) -> tuple[float, float, float, float]:
  """The threshold with the best point-wise F1, in O(T log T).

  Candidates are all distinct scores. The returned threshold follows the project's
  prediction rule `scores > threshold` (`tsad_jax.thresholds.predict`): it is the
  next lower distinct score below the best cut, so exactly the points at or above
  the best cut are predicted. Ties in F1 go to the highest threshold (fewest alarms).

  Args:
    labels: (T,) 0/1 labels.
    scores: (T,) finite scores, higher meaning more anomalous.

  Returns:
    (threshold, f1, precision, recall). Without anomalies in `labels`: threshold =
    max(scores) (nothing predicted), f1 = NaN, precision = 0, recall = NaN.

  Raises:
    ValueError: bad shapes, lengths, non-binary labels or non-finite scores.
  """
  y, s = inputs.labels_and_scores(labels, scores)
  return _search(y, s)


def standard_f1(y: np.ndarray, s: np.ndarray) -> float:
  """Best point-wise F1 over every threshold (validated inputs); NaN without anomalies."""
  return _search(y, s)[1]
