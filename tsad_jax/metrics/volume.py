"""VUS-PR and VUS-ROC (Paparrizos et al., VLDB 2022) exactly as TSB-AD's `RangeAUC_volume_opt`.

For every buffer size w = 0, 1, ..., L (L = `sliding_window`), each anomalous
segment gets soft labels sqrt(1 - d / w) on the floor(w / 2) normal points on
either side (d = distance to the segment; overlapping buffers add, capped at 1).
At 250 thresholds (the scores of rank linspace(0, T - 1, 250) in decreasing
order, predicting `score >= threshold`):
  TP   = predicted anomalous points + predicted buffer weight B,
  P'   = P + B / 2 (P = anomalous points), N' = T - P',
  TPR  = min(TP / P', 1) x (fraction of buffered regions with a prediction),
  FPR  = (predicted - TP) / N',  precision = TP / predicted,
where the buffered regions are the segments widened by floor(w / 2) and merged
when they touch. Range-AUC-ROC is the trapezoid through (0, 0), the 250 points
and (1, 1); Range-AUC-PR is sum_k (TPR_k - TPR_{k-1}) precision_k from TPR_0 = 0.
VUS-* is the mean over the L + 1 buffer sizes.

Here the per-threshold sums are taken from one sort and cumulative sums, so
the cost is O(T log T + L x (thresholds + buffered points)) instead of
TSB-AD's O(L x thresholds x T).

Reference: J. Paparrizos, P. Boniol, T. Palpanas, R. S. Tsay, A. Elmore,
M. J. Franklin, "Volume Under the Surface: A New Accuracy Evaluation Measure
for Time-Series Anomaly Detection", VLDB 2022; TSB-AD (Liu and Paparrizos,
NeurIPS 2024).
"""

import numpy as np
from numpy.typing import ArrayLike

from tsad_jax.metrics import inputs
from tsad_jax.metrics import segments

NUM_THRESHOLDS = 250


def _count_at_least(sorted_values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
  return sorted_values.size - np.searchsorted(sorted_values, thresholds, side="left")


def _buffer_weights(y: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                    window: int) -> tuple[np.ndarray, np.ndarray]:
  """(positions, weights[w, position]) of the normal points in some buffer, for w = 0..window."""
  half = window // 2
  sizes = np.arange(window + 1)
  distance = np.arange(1, half + 1)
  with np.errstate(divide="ignore", invalid="ignore"):
    table = np.where(distance[None, :] <= sizes[:, None] // 2,
                     np.sqrt(np.maximum(1 - distance[None, :] / sizes[:, None], 0)), 0.0)
  positions = np.concatenate([(starts[:, None] - distance).ravel(),
                              (ends[:, None] + distance).ravel()])
  offsets = np.concatenate([np.tile(distance - 1, starts.size), np.tile(distance - 1, ends.size)])
  keep = (positions >= 0) & (positions < y.shape[0])
  keep[keep] = y[positions[keep]] == 0
  positions, offsets = positions[keep], offsets[keep]
  order = np.argsort(positions, kind="stable")
  positions, offsets = positions[order], offsets[order]
  unique, first = np.unique(positions, return_index=True)
  if unique.size == 0:
    return unique, np.zeros((window + 1, 0))
  weights = np.add.reduceat(table[:, offsets], first, axis=1)
  return unique, np.minimum(weights, 1.0)


def _existence(s: np.ndarray, starts: np.ndarray, ends: np.ndarray, window: int,
               thresholds: np.ndarray) -> np.ndarray:
  """Fraction of buffered regions holding a predicted point, (window + 1, thresholds)."""
  n = s.shape[0]
  by_half = {}
  for half in range(window // 2 + 1):
    separate = np.r_[True, ends[:-1] + half < starts[1:] - half]
    lo = np.maximum(starts[separate] - half, 0)
    hi = np.minimum(np.r_[ends[np.flatnonzero(separate)[1:] - 1], ends[-1]] + half, n - 1)
    peaks = np.sort(segments.run_max(s, lo, hi))
    by_half[half] = _count_at_least(peaks, thresholds) / peaks.size
  return np.stack([by_half[w // 2] for w in range(window + 1)])


def _curves(y, s, window, num_thresholds):
  n = s.shape[0]
  positives = int(np.count_nonzero(y))
  starts, ends = segments.bounds(y)
  ascending = np.sort(s)
  ranks = np.linspace(0, n - 1, num_thresholds).astype(int)
  thresholds = ascending[::-1][ranks]
  predicted = _count_at_least(ascending, thresholds)
  point_tp = _count_at_least(np.sort(s[y == 1]), thresholds)

  positions, weights = _buffer_weights(y, starts, ends, window)
  order = np.argsort(-s[positions], kind="stable")
  running = np.zeros((window + 1, positions.size + 1))
  np.cumsum(weights[:, order], axis=1, out=running[:, 1:])
  buffer = running[:, _count_at_least(np.sort(s[positions]), thresholds)]

  tp = point_tp + buffer
  soft_positives = positives + buffer / 2
  tpr = np.minimum(tp / soft_positives, 1) * _existence(s, starts, ends, window, thresholds)
  with np.errstate(divide="ignore", invalid="ignore"):
    fpr = (predicted - tp) / (n - soft_positives)
  return tpr, fpr, tp / predicted


def vus(labels: ArrayLike, scores: ArrayLike, *, sliding_window: int = 100,
        num_thresholds: int = NUM_THRESHOLDS) -> tuple[float, float]:
  """VUS-PR and VUS-ROC with TSB-AD's definition (buffers 0..sliding_window, 250 thresholds).

  Args:
    labels: (T,) 0/1 labels.
    scores: (T,) finite scores, higher meaning more anomalous.
    sliding_window: the largest buffer size L >= 0 (TSB-AD: 100 by default, the
      estimated period of the series in its benchmark runs). 0 gives the range
      AUCs without buffer.
    num_thresholds: score ranks evaluated (TSB-AD: 250).

  Returns:
    (VUS-PR, VUS-ROC): both NaN without anomalies; VUS-ROC NaN when every point
    is anomalous.

  Raises:
    ValueError: bad shapes, lengths, non-binary labels, non-finite scores, or a
      negative window / non-positive threshold count.
  """
  y, s = inputs.labels_and_scores(labels, scores)
  if (isinstance(sliding_window, bool) or int(sliding_window) != sliding_window
      or sliding_window < 0):
    raise ValueError(f"sliding_window must be an integer >= 0, got {sliding_window!r}.")
  if int(num_thresholds) != num_thresholds or num_thresholds < 1:
    raise ValueError(f"num_thresholds must be an integer >= 1, got {num_thresholds!r}.")
  if not y.any():
    return float("nan"), float("nan")
  tpr, fpr, precision = _curves(y, s, int(sliding_window), int(num_thresholds))
  rows = tpr.shape[0]
  tpr_roc = np.concatenate([np.zeros((rows, 1)), tpr, np.ones((rows, 1))], axis=1)
  fpr_roc = np.concatenate([np.zeros((rows, 1)), fpr, np.ones((rows, 1))], axis=1)
  roc = np.sum(np.diff(fpr_roc, axis=1) * (tpr_roc[:, 1:] + tpr_roc[:, :-1]) / 2, axis=1)
  pr = np.sum(np.diff(tpr, axis=1, prepend=0.0) * precision, axis=1)
  return float(np.mean(pr)), float("nan") if y.all() else float(np.mean(roc))
